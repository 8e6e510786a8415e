"""What every test of the repository gets: its own cache directory (``XDG_CACHE_HOME``),
so remembered contract checks neither come from nor go to the home directory, and no
secret an earlier test revealed masked in its log lines."""

from etl_core.testing.fixtures import forgotten_secrets, per_test_cache, session_cache

__all__ = ["forgotten_secrets", "per_test_cache", "session_cache"]
