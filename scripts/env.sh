# Sourced by the scripts: one release build, kept outside the checkout so every clone reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lore/target}"
LORE_BIN="$CARGO_TARGET_DIR/release/lore"
