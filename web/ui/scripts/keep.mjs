// Vite empties dist/ on every build; the Go package embeds dist/ and a fresh
// clone must compile before any npm build, so a committed placeholder is put back.
import { writeFileSync } from "node:fs";
writeFileSync(new URL("../dist/.keep", import.meta.url), "placeholder so go:embed finds dist/ before the UI is built\n");
