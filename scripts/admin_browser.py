#!/usr/bin/env python3
"""Drive fedgate's admin page in headless Chromium (Selenium + chromedriver),
as an admin would: sign in with the local token, read the dashboard, paste a
SAMLResponse in the test tab, read the verdict; then check that a form post
without the anti-forgery token is refused. For fedgate's tests.

    admin_browser.py BASE_URL ADMIN_TOKEN SAML_FILE TAMPERED_FILE SCREENSHOT_DIR

First an admin signs in through the (mock) Entra tenant (/admin/sso: OIDC
redirects only, no script needed), pastes a hostile response and reads the
rejection code; screenshots of the dashboard and the verdict are saved in
SCREENSHOT_DIR. Then, in a fresh browser session, the local-token sign-in.

Prints one JSON object with what the browser saw.
"""
import json
import sys
import tempfile

import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


def main():
    base, token, saml_file, tampered_file, shots = sys.argv[1:6]
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp()}"]:
        opts.add_argument(a)
    # JavaScript off: the admin page must work without it.
    opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    out = {}
    try:
        # 1. Single sign-on through the tenant.
        driver.get(base + "/admin")
        driver.find_element(By.LINK_TEXT, driver.find_element(By.CSS_SELECTOR, "a[href='/admin/sso']").text).click()
        out["sso_title"] = driver.title
        out["sso_dashboard"] = "Dashboard" in driver.find_element(By.TAG_NAME, "h1").text
        out["sso_launcher"] = len(driver.find_elements(By.CSS_SELECTOR, "a[href^='/launch/']"))
        driver.save_screenshot(shots + "/admin-dashboard.png")

        def test(file, console):
            driver.get(base + "/admin/test")
            Select(driver.find_element(By.NAME, "kind")).select_by_value("saml")
            Select(driver.find_element(By.NAME, "tenant")).select_by_visible_text("contoso")
            Select(driver.find_element(By.NAME, "console")).select_by_visible_text(console)
            area = driver.find_element(By.NAME, "input")
            area.clear()
            area.send_keys(open(file).read().strip())
            driver.find_element(By.CSS_SELECTOR, "form[action='/admin/test']").submit()
            return driver.find_element(By.ID, "verdict-code").text, driver.find_element(By.TAG_NAME, "h2").text

        out["sso_tampered_code"], _ = test(tampered_file, "autotask-demo")
        driver.save_screenshot(shots + "/admin-hostile-response.png")
        driver.find_element(By.CSS_SELECTOR, "form[action='/admin/logout']").submit()
        driver.delete_all_cookies()

        # 2. The local token, in a fresh session.
        driver.get(base + "/admin")
        out["login_title"] = driver.title
        driver.find_element(By.NAME, "token").send_keys("not-the-token-at-all")
        driver.find_element(By.TAG_NAME, "form").submit()
        out["wrong_token_page"] = "admin.token_invalid" in driver.page_source
        driver.find_element(By.NAME, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form[action='/admin/login']").submit()
        out["dashboard_title"] = driver.title
        body = driver.find_element(By.TAG_NAME, "body").text
        out["dashboard_has_tenant"] = "contoso" in body
        out["dashboard_has_decisions"] = "Last decisions" in body
        out["no_secret_rendered"] = "PRIVATE KEY" not in driver.page_source and "secret" not in driver.page_source.lower()

        out["valid_code"], out["valid_verdict"] = test(saml_file, "autotask-demo")
        out["tampered_code"], out["tampered_verdict"] = test(tampered_file, "autotask-demo")

        # The session cookie in a script, without the form's token: refused.
        cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
        r = requests.post(base + "/admin/test", data={"kind": "saml", "tenant": "contoso", "input": "x"},
                          cookies=cookies, timeout=10)
        out["csrf_status"] = r.status_code
        out["csrf_code"] = "admin.csrf" in r.text
        out["csp"] = r.headers.get("content-security-policy", "")
    finally:
        driver.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
