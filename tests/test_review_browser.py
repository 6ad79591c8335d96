"""The review page in a real browser (headless Debian Chromium through Selenium), then `train` on the result.

Approve one pair, reject one (with a reason), edit one, try an invalid edit and see it refused (and not
saved), reload and see the three decisions kept; then train must leave the rejected pair out and train the
edited pair on its edit. Under CI=true a missing browser fails the test; elsewhere it skips, saying why
(`scripts/setup.sh` installs it). The screenshot goes to docs/review.png when that file is missing or
SCHEMAGEN_SCREENSHOT=1 (so a test run does not rewrite a tracked image), else next to the test's files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema_specialist.review.app import ReviewServer
from schema_specialist.review.decisions import DECISIONS, read_pairs
from schema_specialist.review.session import ReviewSession
from tests.conftest import ROOT
from tests.test_review import REVIEW_SCHEMA, review_pairs, set_sources

CHROMIUM = Path(os.environ.get("SCHEMAGEN_CHROMIUM", "/usr/bin/chromium"))  # Debian's, as setup.sh installs
CHROMEDRIVER = Path(os.environ.get("SCHEMAGEN_CHROMEDRIVER", "/usr/bin/chromedriver"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FAST = {"lr": 1e-2, "batch_size": 4, "grad_accum": 1, "threads": 1, "checkpoint_every": 0, "warmup_ratio": 0.0}
EDITED = {"id": "B002", "status": "shipped", "total": 15.0, "placed": "2024-03-03", "gift": False}  # as asked
INVALID = '{"id": "B003", "status": "new", "total": 22.5, "placed": "2024-02-31", "gift": false}'  # no Feb 31
REASON = "total does not match the question"


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = f"no headless browser: {', '.join(missing)} missing (bash scripts/setup.sh installs them)"
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,1000", "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def decisions(ds: Path) -> list[dict[str, Any]]:
    path = ds / DECISIONS
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_review_in_a_browser_then_train(browser: Any, make_dataset: Callable[..., Path], tiny_mistral_dir: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    pairs = review_pairs(20)
    pairs[1] = (pairs[1][0], {**pairs[1][1], "total": 999})  # answers that miss the question: to reject,
    pairs[2] = (pairs[2][0], {**pairs[2][1], "status": "new"})  # and to fix
    ds = make_dataset(REVIEW_SCHEMA, pairs, name="orders")
    set_sources(ds, ["teacher", "template", "paraphrase", "focus"])
    manifest = json.loads((ds / "manifest.json").read_text())  # the figures generate records, for the card
    manifest.update(acceptance_rate=0.952, faithfulness={"rate": 1.0}, teacher={"spec": "smollm2", "kind": "local"},
                    engine={"name": "llguidance"}, seed=1, diversity={"distinct_1": 0.31, "distinct_2": 0.52})
    manifest["counts"].update(candidates=21, rejected=1, repaired=0)
    (ds / "manifest.json").write_text(json.dumps(manifest))
    (ds / "rejected.jsonl").write_text(json.dumps({"candidate": 20, "reason": "invalid: 'x' is not one of ['new']",
                                                   "output": '{"status":"x"}'}) + "\n")
    d = browser
    wait = WebDriverWait(d, 20, ignored_exceptions=[StaleElementReferenceException])  # the list re-renders

    def css(selector: str) -> Any:
        return d.find_element(By.CSS_SELECTOR, selector)

    def pick(pair: str) -> None:
        def click(_: Any) -> bool:
            css(f'#pair-list li[data-id="{pair}"]').click()
            return True

        wait.until(click)
        wait.until(lambda _: css("#pair-id").text == pair)

    def listed() -> list[str]:
        return wait.until(lambda _: [str(li.get_attribute("data-id"))
                                     for li in d.find_elements(By.CSS_SELECTOR, "#pair-list li")])

    def status_of(pair: str) -> str:
        return str(css(f'#pair-list li[data-id="{pair}"]').get_attribute("class"))

    def keys(*seq: str) -> None:
        ActionChains(d).send_keys(*seq).perform()

    def ctrl_enter() -> None:
        ActionChains(d).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()

    def ready() -> None:
        wait.until(lambda _: d.execute_script("return document.body.dataset.ready") == "1")

    with ReviewServer(ReviewSession(ds, reviewer="ana")) as url:
        d.get(url + "/")
        ready()
        assert css("#dataset").text == "orders" and css("#reviewer").text == "ana"
        assert len(listed()) == 20

        # approve (button)
        pick("c000000")
        css("#approve").click()
        wait.until(lambda _: "s-approved" in status_of("c000000"))

        # reject with a reason (keyboard: r, type, Enter)
        pick("c000001")
        keys("r")
        wait.until(ec.visibility_of_element_located((By.ID, "reject-reason")))
        css("#reject-reason").send_keys(REASON, Keys.ENTER)
        wait.until(lambda _: "s-rejected" in status_of("c000001"))

        # a valid edit, validated live, saved with Ctrl+Enter
        pick("c000002")
        css("#edit").click()
        area = css("#answer-edit")
        area.clear()
        area.send_keys(json.dumps(EDITED))
        wait.until(lambda _: "valid against the schema" in css("#edit-status").text and css("#save-edit").is_enabled())
        ctrl_enter()
        wait.until(lambda _: "s-edited" in status_of("c000002"))

        # an invalid edit (the format checker: no 31 February) is refused, and nothing is saved
        pick("c000003")
        keys("e")
        area = css("#answer-edit")
        area.clear()
        area.send_keys(INVALID)
        wait.until(lambda _: "/placed" in css("#edit-status").text)
        assert "invalid" in str(css("#edit-status").get_attribute("class"))
        assert not css("#save-edit").is_enabled()
        ctrl_enter()  # the shortcut does not get around it
        wait.until(lambda _: "not saved" in css("#message").text)
        keys(Keys.ESCAPE)
        assert [x["pair"] for x in decisions(ds)] == ["c000000", "c000001", "c000002"]
        assert "c000003" not in (ds / DECISIONS).read_text()

        # another tab approves c000004 while this one is rejecting it: this tab's write is refused, not lost
        pick("c000004")
        keys("r")
        other = httpx.post(url + "/api/decisions", json={"pair": "c000004", "action": "approve", "base": 0,
                                                         "who": "bo"}, timeout=30)
        assert other.status_code == 200
        css("#reject-reason").send_keys("stale view", Keys.ENTER)
        wait.until(lambda _: "Not saved" in css("#message").text and "changed elsewhere" in css("#message").text)
        assert [(x["pair"], x["action"], x["who"]) for x in decisions(ds)][-1] == ("c000004", "approve", "bo")
        wait.until(lambda _: "s-approved" in status_of("c000004"))  # the list may re-render meanwhile
        keys(Keys.ESCAPE)

        # reload: the three decisions are kept
        d.refresh()
        ready()
        wait.until(lambda _: "s-approved" in status_of("c000000") and "s-rejected" in status_of("c000001"))
        wait.until(lambda _: "s-edited" in status_of("c000002") and "s-unreviewed" in status_of("c000003"))
        assert css("#count-approved").text.endswith("approved 2") and css("#count-rejected").text.endswith("rejected 1")
        pick("c000001")
        assert REASON in css("#reason-shown").text
        pick("c000002")
        assert json.loads(css("#answer-raw").text) == EDITED and css("#original").is_displayed()

        # filters list what the data holds
        sources = [o.text for o in Select(css("#filter-source")).options]
        assert sources == ["all", "focus", "paraphrase", "teacher", "template"]
        Select(css("#filter-status")).select_by_visible_text("rejected")
        assert listed() == ["c000001"]
        Select(css("#filter-status")).select_by_visible_text("all")
        Select(css("#filter-source")).select_by_visible_text("template")
        templated = {p.key for s in ("train", "val", "test") for p in read_pairs(ds, s) if p.source == "template"}
        assert set(listed()) == templated and 0 < len(templated) < 20
        Select(css("#filter-source")).select_by_visible_text("all")
        lost = css('.chart[data-field="status"] .bar-row.zero .bar-label')  # the enum value never generated
        assert lost.text == "lost"
        css("#tab-rejects").click()
        wait.until(lambda _: "is not one of" in css("#rejects-table").text)
        css("#tab-pairs").click()

        figures = css("#figures").text
        assert "faithfulness rate 1.0" in figures and "candidates / rejected 21 / 1" in figures
        pick("c000002")
        css("#original summary").click()
        assert '"status": "new"' in css("#original-raw").text
        shot = tmp_path / "review.png"
        assert d.save_screenshot(str(shot))
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1440
        target = ROOT / "docs" / "review.png"
        if os.environ.get("SCHEMAGEN_SCREENSHOT") == "1" or not target.exists():
            shutil.copyfile(shot, target)

    # train on the reviewed dataset: what it tokenizes is what review decided
    from schema_specialist.training import api, train

    seen: list[list[tuple[Any, str]]] = []
    real = api.encode_all

    def spy(tok: Any, pairs: list[tuple[Any, str]], max_len: int) -> Any:
        seen.append(list(pairs))
        return real(tok, pairs, max_len)

    monkeypatch.setattr(api, "encode_all", spy)
    logs: list[str] = []
    info = train(ds, tmp_path / "adapter", base=str(tiny_mistral_dir), max_steps=2, progress=False,
                 log=logs.append, **FAST)
    trained = seen[0]
    assert len(trained) == 16 - 1
    assert not any("B001" in m[-1]["content"] for m, _ in trained)  # the rejected pair
    [edited] = [a for m, a in trained if "B002" in m[-1]["content"]]
    assert json.loads(edited) == EDITED
    assert info["dataset"]["review"] == {"decisions": 4, "left_out_rejected": 1, "edited_used": 1, "stale": 0}
    assert any(line.startswith("review: 4 decisions; 1 rejected pairs left out, 1 edited") for line in logs)
