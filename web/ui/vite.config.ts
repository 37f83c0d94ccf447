import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The agent desk: index.html → dist/ with hashed assets under dist/assets.
// The widget is built separately (vite.widget.config.ts) as one IIFE file.
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // No inline data: URLs, so a strict CSP (default-src 'self') holds.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      "/api": "http://localhost:8080",
      "/ws": { target: "ws://localhost:8080", ws: true },
      "/widget.js": "http://localhost:8080",
    },
  },
});
