#!/bin/sh
# The one place the images' Python install steps live; the Dockerfiles and the
# packaging test (tests/test_packaging.py) both run this script, so what the test
# proves is what the image does.
#
#   docker/wheels.sh build   WHEELHOUSE PACKAGE_DIR...   wheels for the packages and every dependency
#   docker/wheels.sh install WHEELHOUSE REQUIREMENT...   install offline from the wheelhouse only
set -eu

usage() { echo "usage: $0 build WHEELHOUSE PACKAGE_DIR... | install WHEELHOUSE REQUIREMENT..." >&2; exit 2; }
[ "$#" -ge 3 ] || usage
action=$1 wheelhouse=$2
shift 2
python=${PYTHON:-python3}

case "$action" in
  build)
    mkdir -p "$wheelhouse"
    # Local packages are named on one command line so pip satisfies their
    # etl-core>=0.1,<0.2 ranges from these directories, not from an index.
    "$python" -m pip wheel --no-cache-dir --wheel-dir "$wheelhouse" "$@"
    ;;
  install)
    "$python" -m pip install --no-cache-dir --no-index --find-links "$wheelhouse" "$@"
    ;;
  *) usage ;;
esac
