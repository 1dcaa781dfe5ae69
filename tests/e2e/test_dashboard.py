"""The web dashboard in a real browser against the real engine and a real lab migration (issue 16).

Playwright drives Debian's Chromium (/usr/bin/chromium, from scripts/install-system.sh; Playwright's
own browser download is never used) headless, with a fresh profile per test and every background
network feature off. Screenshots go to docs/dashboard-*.png. The admin also drains a host with a
small VM for maintenance and activates it again; a readonly token sees a VM's plan (a read) but
no action button.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from ferry.engine.audit import VDS_ACTIVATE, VM_MIGRATION_DONE
from tests.e2e.test_prometheus import readonly_token

pytestmark = [pytest.mark.lab]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).parents[2] / "docs"
CAP_MBPS = 160   # 20 MiB/s: a 256 MiB guest migrates for >10 s, long enough to watch the bar move


@pytest.fixture
def browser(tmp_path):
    """A fresh Chromium profile (persistent context = its own user-data-dir under tmp_path)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run scripts/install-system.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                       headless=True, args=CHROMIUM_ARGS,
                                                       viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


def log_in(context, e2e, token: str):
    page = context.new_page()
    page.goto(e2e.url + "/")
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_function("document.querySelectorAll('#hosts tbody tr[data-host]').length >= 3")
    return page


def bar_progress(page, mid: str) -> int:
    return int(page.get_attribute(f'tr[data-migration-id="{mid}"] .bar', "data-progress"))


def test_admin_migrates_from_the_dashboard_sets_speed_and_sees_the_bar_reach_100(e2e, e2e_guest, browser):
    t0 = time.monotonic()
    vm = e2e_guest(1, fill_mib=256, dirty_mib_s=6)
    page = log_in(browser, e2e, e2e.token)
    assert page.text_content("#who-role") == "admin"
    row = page.locator(f'#vms tr[data-vm="{vm["name"]}"]')
    row.wait_for()
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": CAP_MBPS}):
        row.locator("select.to").select_option(e2e.hosts[1].name)
        row.locator("button.plan").click()
        page.wait_for_selector("#plan .explanation li")
        assert "parallel" in page.text_content("#plan .explanation")
        assert f"maxBandwidth={CAP_MBPS // 8}" in page.text_content("#plan")
        row.locator("select.to").select_option(e2e.hosts[1].name)
        row.locator("button.migrate").click()
        page.wait_for_selector('#migrations tr[data-state="RUNNING"]')
        mid = page.get_attribute('#migrations tr[data-state="RUNNING"]', "data-migration-id")
        assert e2e.client.get(f"/api/migrations/{mid}")["vm"] == vm["name"]
        running = page.locator(f'tr[data-migration-id="{mid}"]')
        # The bar moves while it runs (long poll), before the end.
        page.wait_for_function(f"""() => {{ const b = document.querySelector('tr[data-migration-id="{mid}"] .bar');
                                  const p = Number(b.dataset.progress); return p > 5 && p < 100; }}""", timeout=120_000)
        running.locator("input.speed").fill("25")
        running.locator("button.set-speed").click()
        page.wait_for_function("document.querySelector('#notice').textContent.includes('maxBandwidth set to 25 MiB/s')")
        # The source QEMU really got the new cap (VM.migrateChangeParams -> virDomainMigrateSetMaxSpeed).
        assert e2e.qmp(e2e.hosts[0].name, vm["name"], "query-migrate-parameters")["max-bandwidth"] == 25 * 2**20
        assert "host" in page.text_content("#hosts thead")
        assert page.text_content(f'#hosts tr[data-host="{e2e.hosts[0].name}"] .flow-out') == "1"
        page.screenshot(path=str(DOCS / "dashboard-migrating.png"), full_page=True)
        page.wait_for_selector(f'tr[data-migration-id="{mid}"][data-state="SUCCEEDED"]', timeout=300_000)
    assert bar_progress(page, mid) == 100
    assert page.text_content(f'tr[data-migration-id="{mid}"] .pct') == "100%"
    page.wait_for_selector(f'#events li[data-code="{VM_MIGRATION_DONE.code}"][data-migration="{mid}"]')
    done = page.text_content(f'#events li[data-code="{VM_MIGRATION_DONE.code}"][data-migration="{mid}"] .msg')
    assert vm["name"] in done and "Actual downtime" in done
    page.wait_for_function(f"""document.querySelector('#vms tr[data-vm="{vm["name"]}"]').children[1].textContent
                              === "{e2e.hosts[1].name}" """)
    final = e2e.client.get(f"/api/migrations/{mid}")
    assert final["state"] == "SUCCEEDED" and final["destination"] == e2e.hosts[1].name
    page.screenshot(path=str(DOCS / "dashboard-admin.png"), full_page=True)
    print(f"\nadmin dashboard test: {time.monotonic() - t0:.1f} s (guest boot included)")


def test_admin_drains_a_host_for_maintenance_from_the_dashboard_and_activates_it(e2e, e2e_guest, browser):
    t0 = time.monotonic()
    host = e2e.hosts[2].name
    vm = e2e_guest(3, memory_mib=256, fill_mib=32, dirty_mib_s=2)      # small: drained in seconds
    page = log_in(browser, e2e, e2e.token)
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row = page.locator(f'#hosts tr[data-host="{host}"]')
    try:
        page.wait_for_function(f"""document.querySelector('#hosts tr[data-host="{host}"] .vms').textContent === "1" """)
        assert row.locator("button.activate").count() == 0
        row.locator("button.maintenance").click()
        page.wait_for_selector(f'#hosts tr[data-host="{host}"][data-status="MAINTENANCE"]', timeout=180_000)
        assert dialogs and "into maintenance" in dialogs[0] and host in dialogs[0]
        page.wait_for_function(f"""document.querySelector('#hosts tr[data-host="{host}"] .maintenance-state')
                                  .textContent.startsWith("in maintenance (1/1 VMs moved)")""")
        # The engine really drained it: the VM runs elsewhere, the host is in MAINTENANCE.
        assert e2e.client.get(f"/api/hosts/{host}")["status"] == "MAINTENANCE"
        moved_to = e2e.vm(vm["name"])["host"]
        assert moved_to in (e2e.hosts[0].name, e2e.hosts[1].name)
        page.wait_for_function(f"""document.querySelector('#vms tr[data-vm="{vm["name"]}"]').children[1].textContent
                                  === "{moved_to}" """)
        assert row.locator("button.maintenance").count() == 0
        page.screenshot(path=str(DOCS / "dashboard-maintenance.png"), full_page=True)
        row.locator("button.activate").click()
        page.wait_for_selector(f'#hosts tr[data-host="{host}"][data-status="UP"]')
        assert len(dialogs) == 2 and dialogs[1].startswith(f"Activate host {host}?")
        assert e2e.client.get(f"/api/hosts/{host}")["status"] == "UP"
        assert page.locator(f'#hosts tr[data-host="{host}"] button.maintenance').is_visible()
        codes = {e["code"] for e in e2e.events() if e.get("host") == host}
        assert VDS_ACTIVATE.code in codes, codes
    finally:
        status = e2e.client.get(f"/api/hosts/{host}")["status"]
        if status == "PREPARING_FOR_MAINTENANCE":
            e2e.client.post(f"/api/hosts/{host}/maintenance/cancel", {"abort_running": True})
        elif status == "MAINTENANCE":
            e2e.client.post(f"/api/hosts/{host}/activate", {})
    print(f"\nmaintenance dashboard test: {time.monotonic() - t0:.1f} s (guest boot included)")


def test_readonly_token_sees_a_live_migration_and_plans_but_no_action_buttons(e2e, e2e_guest, browser):
    t0 = time.monotonic()
    vm = e2e_guest(1, fill_mib=256, dirty_mib_s=6)
    page = log_in(browser, e2e, readonly_token(e2e, f"viewer-{int(time.time())}"))
    assert page.text_content("#who-role") == "readonly"
    page.locator(f'#vms tr[data-vm="{vm["name"]}"]').wait_for()
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": CAP_MBPS}):
        m = e2e.migrate(vm["name"], to=e2e.hosts[1].name)     # asked with the admin token, elsewhere
        page.wait_for_function(f"""() => {{ const b = document.querySelector('tr[data-migration-id="{m["id"]}"] .bar');
                                  return b && Number(b.dataset.progress) > 5; }}""", timeout=120_000)
        # Only Plan (a read) shows: no migrate, cancel, speed, maintenance or activate.
        controls = page.locator("main button:visible:not(.plan), main select:visible, main input:visible")
        assert controls.count() == 0, [controls.nth(i).evaluate("e => e.outerHTML") for i in range(controls.count())]
        assert page.locator("th.actions-col:visible").count() == 0
        assert page.locator("#hosts button").count() == 0
        assert page.text_content(f'#hosts tr[data-host="{e2e.hosts[1].name}"] .flow-in') == "1"
        page.screenshot(path=str(DOCS / "dashboard-readonly.png"), full_page=True)
        page.wait_for_selector(f'tr[data-migration-id="{m["id"]}"][data-state="SUCCEEDED"]', timeout=300_000)
    assert bar_progress(page, m["id"]) == 100
    assert page.locator("main button:visible:not(.plan)").count() == 0
    # The plan is a read: the readonly token gets it, with its explanation and forecast.
    row = page.locator(f'#vms tr[data-vm="{vm["name"]}"]')
    page.wait_for_function(f"""document.querySelector('#vms tr[data-vm="{vm["name"]}"]').children[1].textContent
                              === "{e2e.hosts[1].name}" """)
    row.locator("button.plan").click()
    page.wait_for_selector("#plan dl", timeout=60_000)
    plan_text = page.text_content("#plan")
    assert f"{e2e.hosts[1].name} → " in plan_text and "Very large VMs" in plan_text, plan_text
    page.wait_for_selector("#plan p.forecast")
    assert page.text_content("#plan-vm") == vm["name"]
    # The API agrees: the same token may not start a migration or drain a host.
    for path in (f"/api/vms/{vm['name']}/migrate", f"/api/hosts/{e2e.hosts[0].name}/maintenance"):
        status = page.evaluate(f"""async () => (await fetch('{path}', {{method: 'POST',
            headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('ferry.token')}}}})).status""")
        assert status == 403, path
    assert e2e.client.get(f"/api/hosts/{e2e.hosts[0].name}")["status"] == "UP"
    print(f"\nreadonly dashboard test: {time.monotonic() - t0:.1f} s (guest boot included)")
