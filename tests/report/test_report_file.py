"""-o html on every report command, --report FILE, and their refusals."""

import json

import yaml


def inventory(tmp_path):
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": {"virt_type": "qemu"}}}}))
    return str(path)


def embedded(page: str) -> dict:
    start = page.index('<script type="application/json" id="report-data">') + len('<script type="application/json" id="report-data">')
    return json.loads(page[start:page.index("</script>", start)])


def test_verify_and_apply_check_write_a_page_of_their_steps(cli, tmp_path):
    inv = inventory(tmp_path)
    verify = cli("verify", "-i", inv, "-o", "html")
    data = embedded(verify.stdout)
    assert data["schema"] == "provision.verify/1" and data["hosts"][0]["host"] == "n1"
    assert data["hosts"][0]["groups"] == ["ungrouped"]
    assert {c[0].split(" ")[0] for c in data["hosts"][0]["checks"]} <= {"apply.file", "apply.network", "apply.host_network"}
    page = tmp_path / "plan.html"
    plan = cli("apply", "-i", inv, "--check", "-o", "html", "--report", str(page))
    assert plan.exit_code in (0, 3) and plan.stdout == ""
    data = embedded(page.read_text())
    assert data["schema"] == "provision.apply/1"
    pending = [c for c in data["hosts"][0]["checks"] if c[1] == "warn"]
    assert all(": would " in c[2] for c in pending)


def test_every_format_goes_to_the_report_file(cli, tmp_path):
    for fmt, start in (("json", "{"), ("junit", "<?xml"), ("table", ""), ("html", "<!DOCTYPE html>")):
        out = tmp_path / f"r.{fmt}"
        result = cli("preflight", "-o", fmt, "--report", str(out))
        assert result.exit_code in (0, 1) and result.stdout == "", fmt
        assert out.read_text().startswith(start) and "\x1b[" not in out.read_text(), fmt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "r.junit", "r.table"]  # no leftovers


def test_a_report_file_that_cannot_be_written_is_exit_2(cli, tmp_path):
    result = cli("preflight", "--report", str(tmp_path / "no" / "such" / "r.html"), "-o", "html")
    assert result.exit_code == 2
    assert f"--report {tmp_path / 'no' / 'such' / 'r.html'}: cannot write there: No such file or directory" in result.stderr


def test_apply_refuses_junit_before_it_does_anything(cli, tmp_path):
    result = cli("apply", "-i", inventory(tmp_path), "-o", "junit")
    assert result.exit_code == 2 and "apply writes table, json or html" in result.output
