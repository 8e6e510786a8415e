"""What every test of the repository gets: its own cache directory (``XDG_CACHE_HOME``),
so remembered contract checks neither come from nor go to the home directory."""

from etl_core.testing.fixtures import per_test_cache, session_cache

__all__ = ["per_test_cache", "session_cache"]
