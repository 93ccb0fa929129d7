import re

import pytest

from namedax.__main__ import main


def test_demo_runs_trains_and_sweeps(tmp_path, capsys):
    out = tmp_path / "sweep.png"
    main(["demo", "--grid", "4", "--steps", "6", "--out", str(out)])
    text = capsys.readouterr().out
    assert "add: axis 'embed' has size 3 in one operand and 5 in another" in text
    first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", text).groups())
    assert last < first  # a few SGD steps reduce the toy regression loss
    assert "swept 16 points" in text
    assert "result axes (Axis('omega', 4), Axis('zeta', 4))" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in text and not out.exists()
    else:
        assert out.exists() and out.stat().st_size > 1000


def test_demo_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--grid", "--devices", "--steps", "--no-plot"):
        assert opt in text
