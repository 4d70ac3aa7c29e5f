from pathlib import Path

import pytest

import sqlml

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def con():
    c = sqlml.connect()
    yield c
    c.close()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "test.duckdb"


def shared_file(*parts: str) -> Path:
    """A file from ../shared/data, or a clean skip where the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: real-data checks need ../shared/data beside the checkout")
    return path
