"""Read inventories with ansible-core's own engine: its inventory manager, inventory plugins (YAML, INI,
TOML, scripts, ``constructed``, installed collections) and vars plugins (``group_vars/``,
``host_vars/``), its host patterns, ranges, ``host:port``, precedence, ``ansible_group_priority``,
templating and vault — exactly as Ansible reads them.

What provision adds: the ``provision`` variable is merged key by key over Ansible's own order of
variable sources (as ``hash_behaviour = merge`` merges it; for the plain scalar variables provision
reads, merging and replacing agree), and every value keeps the file it came from (Ansible's origin
tags), so errors name the file, the host and the field.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import InputError
from provision.inventory.model import Inventory

MAX_FILE_BYTES = 16 * 1024 * 1024  # an inventory file, or a vars file: ten thousand hosts take a few MiB
_TEMP: list[str] = []  # Ansible's local temporary folder of this process, removed when provision exits
# inventory plugins tried in this order when ansible.cfg does not say: Ansible's own list with yaml
# before auto. Both read YAML files; auto takes only plugin configurations (``plugin: ...``), which
# yaml refuses, so every source parses as before, and a plain YAML file is not parsed twice.
INVENTORY_ORDER = ["host_list", "script", "yaml", "auto", "ini", "toml"]


@dataclass(frozen=True)
class VaultOptions:
    """How to open vault-encrypted values: password files, a prompt, and Ansible's own settings
    (``ANSIBLE_VAULT_PASSWORD_FILE``, ``ANSIBLE_VAULT_IDENTITY_LIST``, ansible.cfg), as ``ansible`` does."""

    password_files: tuple[str, ...] = ()
    ask: bool = False


_vault = VaultOptions()


def set_vault_options(options: VaultOptions) -> None:
    """The command line's vault options, for every inventory this process reads."""
    global _vault
    _vault = options


@dataclass
class Warnings:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def ansible_constants():
    """Ansible's settings, loaded the first time with its local temporary folder where this user can
    write: Ansible makes a folder under ~/.ansible/tmp as they load, and a HOME that cannot be written
    (nobody's /nonexistent) was a traceback. Unless ANSIBLE_LOCAL_TEMP says otherwise, a private folder
    of this user's under /tmp instead (for that load only: nothing else of the environment changes)."""
    if "ansible.constants" in sys.modules:
        return sys.modules["ansible.constants"]
    given = os.environ.get("ANSIBLE_LOCAL_TEMP")
    if given is not None:
        folder = os.path.expanduser(given)
        parent = folder if os.path.isdir(folder) else os.path.dirname(folder.rstrip("/")) or "/"
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"ANSIBLE_LOCAL_TEMP={given}: this user cannot write there (Ansible makes its "
                             "temporary folder there as it starts)")
        from ansible import constants
    else:
        from provision.remote.hosts import private_folder

        os.environ["ANSIBLE_LOCAL_TEMP"] = private_folder("provision-ansible")
        try:
            from ansible import constants
        finally:
            del os.environ["ANSIBLE_LOCAL_TEMP"]
    return constants


def configure() -> None:
    """Ansible's settings that provision relies on; the rest is as ansible.cfg and ANSIBLE_* say."""
    C = ansible_constants()

    if not _TEMP and C.DEFAULT_LOCAL_TMP:
        _TEMP.append(C.DEFAULT_LOCAL_TMP)  # Ansible removes it at exit, which provision's quick exit skips

    from provision.inventory import lookups

    lookups.install()  # no lookups from inventory values (lookups.py says why)
    # a source no plugin can read is an error, not lost hosts; a file of a folder that none can read is a
    # warning naming it, as in Ansible (fatal where its inventory_any_unparsed_is_failed says so)
    C.INVENTORY_UNPARSED_IS_FAILED = True
    C.HOST_PATTERN_MISMATCH = "ignore"  # an empty --limit is provision's own error (exit 2)
    C.DEFAULT_HASH_BEHAVIOUR = "merge"  # provision: merged key by key, in Ansible's order
    if C.CACHE_PLUGIN in ("memory", "ansible.builtin.memory"):
        # no facts were gathered in this process, so there are none to inject: Ansible would still
        # list every connection plugin on disk for each host to clean an empty dict (a third of the
        # time of reading a host's variables)
        C.INJECT_FACTS_AS_VARS = False
    value, origin = C.config.get_config_value_and_origin("INVENTORY_ENABLED")
    if origin == "default":
        C.INVENTORY_ENABLED = [p for p in INVENTORY_ORDER if p in value] + [p for p in value if p not in INVENTORY_ORDER]


@contextlib.contextmanager
def ansible_warnings():
    """Ansible's warnings and parse failures, collected instead of printed (the CLI prints them as
    provision's, and folds the failures into its error)."""
    from ansible.utils.display import Display

    display = Display()
    found = Warnings()

    def warning(msg, formatted=False, **kwargs):
        found.lines.append(str(msg).strip())

    def error_as_warning(msg, exception, **kwargs):
        found.failures.append(_failure(str(msg), exception))

    def deprecated(msg, *args, **kwargs):
        found.lines.append(str(msg).strip())

    with contextlib.ExitStack() as stack:
        for name, replacement in (("warning", warning), ("error_as_warning", error_as_warning),
                                  ("deprecated", deprecated)):
            original = getattr(display, name)
            setattr(display, name, replacement)
            stack.callback(setattr, display, name, original)
        yield found


def remove_temp() -> None:
    """Remove Ansible's local temporary folder of this process (the console script's exit skips atexit)."""
    import shutil

    while _TEMP:
        shutil.rmtree(_TEMP.pop(), ignore_errors=True)


KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"))


def check_readable(path: Path, what: str = "inventory", _above: frozenset = frozenset()) -> None:
    """Refuse what Ansible would read wrongly or for ever, before it opens anything: a FIFO or device
    (``-i /dev/zero`` read until memory ran out, a FIFO without a writer blocked), a file over
    MAX_FILE_BYTES, a symlink loop, and a file or folder this user cannot read (Ansible skips an
    unreadable ``group_vars/`` silently: its hosts would lose their settings). A folder is walked as
    Ansible walks it: every entry but the hidden ones, ``group_vars/`` and ``host_vars/`` included."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(f"{path}: a symlink to nothing ({os.readlink(path)})") from None
        raise
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise InputError(f"{path}: a symlink loop; not an {what} file or folder") from None
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    kind = next((name for test, name in KINDS if test(st.st_mode)), None)
    if kind:
        raise InputError(f"{path}: is {kind}, not an {what} file; not opened")
    if stat.S_ISDIR(st.st_mode):
        if (st.st_dev, st.st_ino) in _above:
            raise InputError(f"{path}: a symlink to a folder that holds it (a loop); not an {what} folder")
        if not os.access(path, os.X_OK) or (what == "inventory" and not os.access(path, os.R_OK)):
            raise InputError(f"{path}: cannot read this folder (permission denied); its {what} would be lost")
        if not os.access(path, os.R_OK):
            return  # vars: entered but not listed, Ansible opens each host's and group's file by its name
        for entry in sorted(os.listdir(path)):
            if not entry.startswith("."):
                check_readable(path / entry, "inventory vars" if entry in ("group_vars", "host_vars") else what,
                               _above | {(st.st_dev, st.st_ino)})
        return
    if st.st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: is {st.st_size / 2**20:.0f} MiB; an {what} file may be at most "
                         f"{MAX_FILE_BYTES // 2**20} MiB (refused before reading it)")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot read this file (permission denied)")


def _failure(msg: str, exc: BaseException) -> str:
    """'yaml plugin: YAML parsing failed: ... (site.yml:4:1)' from Ansible's failure and its causes."""
    plugin = msg.removeprefix("Failed to parse inventory with ").removesuffix(" plugin.").strip("'")
    reasons: dict[str, str] = {}
    cause: BaseException | None = exc
    while cause is not None:
        text = (getattr(cause, "message", None) or str(cause)).split("\n")[0].strip()
        text = text.removeprefix("Failed to parse inventory: ")
        where = _origin_text(getattr(cause, "obj", None))
        if text and not text.startswith("Failed to parse inventory with") and text not in reasons:
            reasons[text] = text + (f" ({where})" if where and where not in text else "")
        cause = cause.__cause__
    return f"{plugin} plugin: {'; '.join(reasons.values()) or msg}"


def _relevant(source: str, failures: list[str]) -> list[str]:
    """The failures that say why: a .yml file's YAML plugins, an .ini file's INI plugin; all otherwise."""
    from ansible import constants as C

    suffix = os.path.splitext(source)[1]
    wanted = ("yaml", "auto") if suffix in C.YAML_FILENAME_EXTENSIONS else ("ini",) if suffix == ".ini" else None
    if wanted is None:
        return failures
    chosen = [f for f in failures if f.split(" ", 1)[0] in wanted]
    if len(chosen) > 1 and any("is not a valid YAML inventory plugin config file" in f for f in chosen):
        chosen = [f for f in chosen if "is not a valid YAML inventory plugin config file" not in f]
    return chosen or failures


def _origin_text(obj) -> str:
    from ansible._internal._datatag._tags import Origin

    origin = obj if isinstance(obj, Origin) else Origin.get_tag(obj) if obj is not None else None
    if origin is None or not origin.path:
        return ""
    return str(origin)


def _loader():
    from ansible.errors import AnsibleParserError
    from ansible.parsing.dataloader import DataLoader

    from provision.inventory.model import bounded

    class SharedLoader(DataLoader):
        """Ansible's loader, handing out each parsed file without a deep copy: provision reads the
        inventory once and writes nothing into it, and the copies were two thirds of the time of
        loading a 1,000-host inventory. Each file is measured first (:func:`bounded`): Ansible would
        follow every alias of a 'billion laughs' file."""

        def load_from_file(self, file_name, cache="all", unsafe=False, json_only=False, trusted_as_template=False):
            try:
                check_readable(Path(file_name), "inventory or vars")
            except InputError as exc:
                raise AnsibleParserError(str(exc)) from None
            data = super().load_from_file(file_name, cache, True, json_only, trusted_as_template)
            if problem := bounded(data):
                raise AnsibleParserError(f"{file_name}: {problem}; refused")
            return data

    return SharedLoader()


def _setup_vault(loader) -> None:
    from ansible import constants as C
    from ansible.cli import CLI
    from ansible.errors import AnsibleError

    files = list(_vault.password_files)
    if C.DEFAULT_VAULT_PASSWORD_FILE and not files:
        files.append(C.DEFAULT_VAULT_PASSWORD_FILE)
    try:
        secrets = CLI.setup_vault_secrets(loader, vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST),
                                          vault_password_files=files, ask_vault_pass=_vault.ask,
                                          auto_prompt=False, initialize_context=False)
    except AnsibleError as exc:
        raise InputError(f"vault password: {exc.message}") from None
    loader.set_vault_secrets(secrets)
    from ansible.parsing.vault import VaultSecretsContext

    # the process-wide secrets that vaulted values are opened with when templated (Ansible's CLI sets
    # them once; a process that reads several inventories hands each its own)
    if VaultSecretsContext.current(optional=True) is None:
        VaultSecretsContext.initialize(VaultSecretsContext(secrets))
    else:
        VaultSecretsContext.current().secrets = secrets


def load_inventory(source: str | Path) -> Inventory:
    """Load ``source`` (anything ``ansible -i`` takes: a file, a folder, a script, a plugin configuration)."""
    configure()
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.vars.manager import VariableManager

    source = Path(source)
    try:
        check_readable(source)  # Ansible's plugins would each decline it, saying nothing of why
        beside = source if source.is_dir() else source.parent
        for folder in ("group_vars", "host_vars"):  # read by Ansible's vars plugin, which skips what it cannot read
            if os.path.lexists(beside / folder):
                check_readable(beside / folder, "inventory vars")
    except FileNotFoundError:
        raise InputError(f"{source}: no such inventory file or folder") from None
    loader = _loader()
    from ansible import constants as C

    if _vault.password_files or _vault.ask or C.DEFAULT_VAULT_PASSWORD_FILE or C.DEFAULT_VAULT_IDENTITY_LIST:
        _setup_vault(loader)  # ansible.cli, which sets it up, is a tenth of a second to import
    from provision.inventory.lookups import refusal, take_refused

    take_refused()
    with ansible_warnings() as warned, _no_cycle_collection():
        try:
            manager = InventoryManager(loader=loader, sources=[str(source)])
        except AnsibleError as exc:
            if refused := take_refused():  # a plugin's expression (constructed's compose) asked for one
                raise InputError(f"{source}: {refusal(refused)}") from None
            failed = str(exc.message).removeprefix("Completely failed to parse inventory source ").strip()
            if failed.startswith("No inventory was parsed"):  # the source itself (INVENTORY_UNPARSED_IS_FAILED)
                failed = str(source)
            reasons = "\n  ".join(_relevant(failed, warned.failures)) or str(exc.message)
            raise InputError(f"{failed}: not an inventory Ansible can read:\n  {reasons}") from None
        except RecursionError:
            raise InputError(f"{source}: nested too deeply for an inventory") from None
    if refused := take_refused():
        raise InputError(f"{source}: {refusal(refused)}")
    variables = VariableManager(loader=loader, inventory=manager)
    warnings = [" ".join(w.split()) for w in warned.lines] + unused_vars(source, manager)
    return Inventory(source, manager, variables, loader, warnings)


@contextlib.contextmanager
def _no_cycle_collection():
    """Parsing makes tens of thousands of objects that live on, and no cycles worth collecting: each
    of the collector's full passes on the way would walk all of them again (a tenth of the load of a
    1,000-host inventory). What is made here is then frozen out of later passes (the gc module's
    advice for long-lived data)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def unused_vars(source: Path, manager) -> list[str]:
    """group_vars/ and host_vars/ entries beside the inventory that name no group or host: Ansible
    ignores them silently, which hides a typo (``group_vars/comptue.yml``)."""
    from ansible import constants as C

    base = source if source.is_dir() else source.parent
    found = []
    for kind, known in (("group", manager.groups), ("host", manager.hosts)):
        folder = base / f"{kind}_vars"
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # absent, or unreadable: Ansible's vars plugin says so when it reads the host's vars
        for entry in entries:
            if entry.name.startswith("."):
                continue
            stem = entry.name
            if not entry.is_dir():
                stem, ext = os.path.splitext(entry.name)
                if ext not in (*C.YAML_FILENAME_EXTENSIONS, ""):
                    continue
            if stem not in known:
                found.append(f"{folder / entry.name}: {kind} {stem} is not in the inventory; its vars are not used")
    return found
