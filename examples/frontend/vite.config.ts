import { defineConfig } from "vite";

// http://localhost:5173: the origin Warden's default CORS settings
// (`cors.allow_origins_with_credentials`) already allow. strictPort: another
// port would be another origin, which Warden would refuse.
export default defineConfig({
  server: { port: 5173, strictPort: true },
});
