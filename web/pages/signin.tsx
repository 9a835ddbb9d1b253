/** Sign-in with an API token (rmt_…); the server keeps the token and gives this browser a session cookie. */
import { useState } from 'preact/hooks';
import type { SessionInfo } from '../../control-plane/console/wire.js';
import { signIn } from '../api.js';

export function SignIn({ onSignedIn }: { onSignedIn: (s: SessionInfo) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const submit = (e: Event): void => {
    e.preventDefault();
    setError('');
    signIn(token).then(onSignedIn, (err: Error) => setError(err.message));
  };
  return (
    <form class="signin" onSubmit={submit}>
      <h1>runmesh</h1>
      <label>
        API token
        <input
          name="token"
          type="password"
          autoComplete="off"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          placeholder="rmt_…"
        />
      </label>
      <button type="submit">Sign in</button>
      {error && <p class="error">{error}</p>}
      <p class="muted">Make one with: runmesh tokens create --role viewer --tenant default</p>
    </form>
  );
}
