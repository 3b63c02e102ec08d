from bouncegen import cli


def test_render_example(tmp_path, capsys):
    assert cli.main(["render", "inventory.example.toml", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "postfix" / "main.cf").exists()
