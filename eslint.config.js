// The upload page's script is plain browser JavaScript with no build step: ESLint's
// recommended rules catch what a browser would only show at run time (an undefined name, a
// variable never used, a typo'd comparison). `make lint` runs it.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["bot/web/static/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: globals.browser },
  },
];
