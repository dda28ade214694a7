"""The services' start-up check reads the migrations' head without Alembic: it must name the
same head and revisions as Alembic's own script directory."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from sourcing.common.migrate import _revision_graph, alembic_config, head_revision


def test_the_head_and_the_revisions_are_alembics() -> None:
    scripts = ScriptDirectory.from_config(alembic_config(""))
    assert head_revision() == scripts.get_current_head()
    graph = _revision_graph()
    assert graph == {
        script.revision: tuple(
            [script.down_revision]
            if isinstance(script.down_revision, str)
            else script.down_revision or ()
        )
        for script in scripts.walk_revisions()
    }
