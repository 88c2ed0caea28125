import pytest

from acoustack import cli


def test_without_a_command_the_cli_says_what_it_needs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_colour_only_on_a_terminal(tmp_path, monkeypatch):
    with open(tmp_path / "out", "w") as not_a_terminal:
        assert not cli.use_colour(not_a_terminal)
        assert cli.paint("x", "31", not_a_terminal) == "x"
