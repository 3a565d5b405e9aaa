"""The evidence guard video retention asks: open and recently closed alerts keep their evidence."""

from __future__ import annotations

from alerts.lifecycle import Action
from core.principal import Principal
from tests.alerts.conftest import Api
from tests.alerts.support import PLANT, clue

EVIDENCE = "sha256:" + "ab" * 32


def test_evidence_is_kept_while_the_alert_needs_it(api: Api) -> None:
    service = api.service
    assert not service.is_protected(EVIDENCE)
    with service.pool.connection() as conn:
        out = service.store.apply_clue(conn, clue(PLANT, "EEB"))
    assert out.alert is not None
    assert service.is_protected(EVIDENCE)
    assert not service.is_protected("sha256:" + "cd" * 32)
    service.act(out.alert.id, Action.RESOLVE, Principal("key 1", "EEB"))
    api.clock.advance(364 * 86400)
    assert service.is_protected(EVIDENCE)
    api.clock.advance(2 * 86400)
    assert not service.is_protected(EVIDENCE)
