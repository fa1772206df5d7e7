import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The Tauri host loads ui/dist (custom-protocol builds) or the dev server
// on 127.0.0.1:5173 (plain `cargo build`).
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 2000 },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
