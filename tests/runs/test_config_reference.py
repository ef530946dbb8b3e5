"""docs/configuration.md's key reference is generated from the configs' own comments (thinkless.runs.config_reference):
every key of conf/**/*.yaml has a comment, the page is what the generator writes, and the generator reads comments and
defaults as the YAML means them."""

from __future__ import annotations

import yaml

from thinkless.runs import config_reference as ref

from ..conftest import ROOT


def test_every_config_key_has_a_comment():
    missing = ref.missing_comments()
    assert not missing, ("config keys without a comment (a comment on the key's line, or the comment lines just above "
                         "it: what it does, its unit or range, why this default):\n  " + "\n  ".join(missing))


def test_the_configuration_page_is_what_the_generator_writes():
    current = ref.PAGE.read_text()
    assert ref.BEGIN in current and ref.END in current
    assert ref.page(current) == current, "docs/configuration.md is stale: run python -m thinkless.runs.config_reference"


def test_the_gym_pages_recipe_tables_are_what_the_generator_writes():
    """docs/gym.md's "The two arms" tables are conf/recipe/*.yaml's values beside the shared arm's (composed), a bold
    value where they differ: a recipe file changed without regenerating, or the shared arm moved, fails here."""
    current = ref.GYM_PAGE.read_text()
    assert ref.RECIPE_BEGIN in current and ref.RECIPE_END in current
    block = ref.recipe_tables()
    assert ref.replace_block(current, block, ref.RECIPE_BEGIN, ref.RECIPE_END) == current, (
        "docs/gym.md's recipe tables are stale: run python -m thinkless.runs.config_reference")
    # one table per recipe file; thinkless's KL differs from the shared arm's 0, its top-p is the shared arm's
    assert block.count("| knob | recipe | shared |") == len(list((ref.CONF / "recipe").glob("*.yaml")))
    thinkless = block.split("#### `thinkless`")[1].split("####")[0]
    assert "| `rl.args.beta` | **`0.001`** | `0.0` |" in thinkless and "| `rl.args.top_p` | `1.0` | `1.0` |" in thinkless


def test_every_shown_default_is_the_files_value():
    """A scalar or flow default shown on the page parses to the value the file holds (what Hydra composes)."""
    for f in ref.config_files():
        data = yaml.safe_load(f.path.read_text())
        for k in f.keys:
            if not k.default or k.default == "(table)":
                continue
            value = data
            for part in k.path.split("."):
                value = value[part]
            assert yaml.safe_load(k.default) == value, (f.path, k.path, k.default)


def test_comments_on_the_line_continued_or_above_and_the_header_apart(tmp_path):
    conf = tmp_path / "conf"
    (conf / "grp").mkdir(parents=True)
    (conf / "main.yaml").write_text(
        "# python main.py: the file's header, not a key's comment\n"
        "defaults:\n"
        "  - grp: one\n"
        "  - _self_\n"
        "name: x                # on the line\n"
        "rate: 0.5              # on the line, and\n"
        "                       # continued below\n"
        "# just above\n"
        "above: 1\n"
        "# separated by a blank line: no key's\n"
        "\n"
        "bare: 2\n"
        'quoted: "a # b"        # after the value\n'
        "methods: [a,\n"
        "          b]           # after a flow list spanning lines\n"
        "sched:                 # a block list, shown in flow style\n"
        "  - after: 3\n"
        "    x: 0.8\n"
        "official:              # documentation\n"
        "  mapping:             # rows, not keys\n"
        "    k1: [1, a, 1]\n"
        "nest:                  # a mapping\n"
        "  # its child, above\n"
        "  child: null\n")
    (conf / "grp" / "one.yaml").write_text("# an option\nkey: 1\n")
    f = ref.parse(conf / "main.yaml")
    got = {k.path: (k.default, k.comment) for k in f.keys}
    assert f.description == "# python main.py: the file's header, not a key's comment"
    assert got == {
        "name": ("x", "on the line"),
        "rate": ("0.5", "on the line, and continued below"),
        "above": ("1", "just above"),
        "bare": ("2", ""),
        "quoted": ('"a # b"', "after the value"),
        "methods": ("[a, b]", "after a flow list spanning lines"),
        "sched": ("[{after: 3, x: 0.8}]", "a block list, shown in flow style"),
        "official": ("", "documentation"),
        "official.mapping": ("(table)", "rows, not keys"),
        "nest": ("", "a mapping"),
        "nest.child": ("null", "its child, above"),
    }
    assert f.defaults == ["grp: one", "_self_"]
    assert ref.missing_comments(conf) == ["conf/grp/one.yaml:2 key", "conf/main.yaml:12 bare"]
    page = ref.render(conf)
    assert "| `grp.key` | `1` |  |" in page  # a group chosen as `grp=NAME`: keys as they are overridden
    assert "| `quoted` | `\"a # b\"` | after the value |" in page


def test_the_page_keeps_its_hand_written_text(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.yaml").write_text("a: 1  # one <think> | two\n")
    hand = "# Title\n\nintro\n\n"
    first = ref.page(hand, conf)
    assert first.startswith(hand) and "| `a` | `1` | one &lt;think&gt; \\| two |" in first
    edited = first + "\nafter the block\n"
    (conf / "main.yaml").write_text("a: 2  # changed\n")
    second = ref.page(edited, conf)
    assert second.startswith(hand) and second.endswith(ref.END + "\n\nafter the block\n")
    assert "| `a` | `2` | changed |" in second and "`1`" not in second


def test_the_readme_links_the_reference():
    assert "docs/configuration.md" in (ROOT / "README.md").read_text()
