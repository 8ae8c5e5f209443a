"""Root conftest of the pytest-humaneval repo: plugins its own test suite uses."""

pytest_plugins = ("pytester",)
