"""The .deb that CPack builds: what a user installing it gets."""
import gzip
import os
import pathlib
import shutil
import subprocess

import pytest

SOURCE = pathlib.Path(os.environ.get("MLOPS_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD = pathlib.Path(os.environ.get("MLOPS_BUILD_DIR", SOURCE / "build"))
BINARY = pathlib.Path(os.environ.get("MLOPS_BIN", BUILD / "mlops"))


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    if not shutil.which("dpkg-shlibdeps"):
        pytest.fail("dpkg-dev is missing: ./packaging/bootstrap.sh test installs it")
    out = tmp_path_factory.mktemp("packages")
    subprocess.run(["cpack", "--config", str(BUILD / "CPackConfig.cmake"), "-B", str(out)],
                   check=True, capture_output=True, text=True)
    debs = list(out.glob("mlops_*.deb"))
    assert len(debs) == 1, f"expected one .deb in {out}, found {debs}"
    return debs[0]


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_control_fields(deb):
    assert field(deb, "Package") == "mlops"
    version = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True).stdout
    assert field(deb, "Version") in version
    depends = field(deb, "Depends")
    # Linked libraries come from dpkg-shlibdeps; dlopen'd ones must be named explicitly.
    for package in ["libsqlite3-0", "libspdlog1.10", "libcurl4", "libgit2-1.5", "libprotobuf"]:
        assert package in depends, f"{package} missing from Depends: {depends}"


def test_contents_install_and_run(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    usr = tmp_path / "usr"
    mlops = usr / "bin" / "mlops"
    assert os.access(mlops, os.X_OK)
    run = subprocess.run([str(mlops), "--json", "version"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert '"mlops"' in run.stdout
    worker = usr / "bin" / "mlops-worker"  # installed beside mlops, which runs it
    assert os.access(worker, os.X_OK)
    assert subprocess.run([str(worker), "--help"], capture_output=True).returncode == 0

    man = gzip.decompress((usr / "share/man/man1/mlops.1.gz").read_bytes()).decode()
    assert man.startswith(".TH MLOPS 1")
    assert "mlops db check" in man

    installed = {
        "share/bash-completion/completions/mlops": "mlops.bash",
        "share/zsh/vendor-completions/_mlops": "_mlops",
        "share/fish/vendor_completions.d/mlops.fish": "mlops.fish",
    }
    for path, source in installed.items():
        assert (usr / path).read_text() == (SOURCE / "completions" / source).read_text(), path
