import { defineConfig } from "vite";

// widget.js: one dependency-free IIFE that customers' sites load with
// <script src="https://host/widget.js" data-widget="ID">. Not hashed, so the
// server sends it with no-cache and sites never need to change their tag.
export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: false,
    copyPublicDir: false,
    lib: {
      entry: "src/widget/widget.ts",
      name: "AgentDeskWidget",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
    minify: true,
    target: "es2019",
  },
});
