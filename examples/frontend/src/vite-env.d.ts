/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The Warden server's URL; default: the client's `Local` (http://localhost:4000). */
  readonly VITE_WARDEN_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
