/**
 * The `--etcd-*` flags, kept apart from the store's code so that the
 * options and the CLI name them without loading etcd's client.
 */
/** The `--etcd-*` flags as given: file paths and names, '' when absent. */
export interface EtcdFlags {
  /** `--etcd-ca`: PEM of the CA that signs etcd's certificate (default: the system's roots). */
  ca: string;
  /** `--etcd-cert`, `--etcd-key`: a client certificate and its key (PEM), for etcd's --client-cert-auth. */
  cert: string;
  key: string;
  /** `--etcd-server-name`: the name etcd's certificate carries, when the addresses differ from it. */
  serverName: string;
  /** `--etcd-user`, `--etcd-password-file`: etcd's own authentication. */
  user: string;
  passwordFile: string;
}

export const NO_ETCD_FLAGS: EtcdFlags = { ca: '', cert: '', key: '', serverName: '', user: '', passwordFile: '' };
