// `node --import ./tutorial-env.mjs tutorial.mjs`: what the tutorial's
// browser code expects and node 20 lacks. `localStorage` (an in-memory
// one), and imports without an extension ("./lib/client" finds
// ./lib/client.js), as a bundler resolves them.
import { register } from "node:module";

register(new URL("./extensionless-hooks.mjs", import.meta.url));

if (!("localStorage" in globalThis)) {
  const items = new Map();
  globalThis.localStorage = {
    get length() {
      return items.size;
    },
    key: (i) => [...items.keys()][i] ?? null,
    getItem: (k) => (items.has(String(k)) ? items.get(String(k)) : null),
    setItem: (k, v) => void items.set(String(k), String(v)),
    removeItem: (k) => void items.delete(String(k)),
    clear: () => items.clear(),
  };
}
