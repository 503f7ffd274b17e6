"""The libraries that decide result bits are exactly the ones requirements.lock pins."""

from cluster.versions import BIT_DECIDING, installed_versions, locked_versions


def test_bit_deciding_libraries_match_the_lock_file():
    locked = locked_versions()
    installed = installed_versions()
    mismatched = {
        name: (installed[name], locked.get(name))
        for name in BIT_DECIDING
        if installed[name] != locked.get(name)
    }
    assert not mismatched, f"installed != locked (installed, locked): {mismatched}"


def test_lock_file_pins_the_versions_the_design_names():
    locked = locked_versions()
    assert locked["ray"] == "2.60.0"
    assert locked["bayesian-optimization"] == "3.4.0"
    assert locked["ccxt"] == "4.5.90"
    assert locked["psycopg"].startswith("3.3.")
    assert "psycopg-pool" in locked
