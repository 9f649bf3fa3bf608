# Sourced by the repository's shell tools, so each answers --help and --version like dae-cl:
#   . "$(dirname "$0")/script-help.sh"; script_help_or_version "$0" "$@"
# --help (or -h) as the first argument prints the script's opening comment block, --version the
# project version from meson.build; both exit 0. Anything else returns for the script to handle.
script_help_or_version() {
  local script=$1
  shift
  case ${1:-} in
    -h | --help)
      echo "usage: $script [arguments]"
      # The comment lines after the #! line, up to the first line that is not a comment.
      sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$script"
      exit 0 ;;
    --version)
      local meson
      meson="$(cd "$(dirname "$script")/.." && pwd)/meson.build"
      echo "$(basename "$script") $(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$meson" | head -1)"
      exit 0 ;;
  esac
}
