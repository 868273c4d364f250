#!/usr/bin/env bash
# Fails, listing the files, when any tracked C++ file differs from clang-format's output.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r -d '' f; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done < <(git ls-files -z --cached --others --exclude-standard '*.cc' '*.h')
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "format-check: these files need clang-format (run 'make format'):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "format-check: ok"
