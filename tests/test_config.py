"""``QueueConfig``: environment overrides cast strictly, subscribers, the engine's settings."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from qtasks import QueueTasks
from qtasks.configs import QueueConfig
from qtasks.exc import ConfigError
from tests.support import free_port, popen, read_line_matching, stop_process, wait_for_workers


@pytest.mark.parametrize("variable, raw, field, value", [
    ("QTASKS_MAX_TASKS_PROCESS", " 4 ", "max_tasks_process", 4),
    ("QTASKS_SHUTDOWN_GRACE", "2.5", "shutdown_grace", 2.5),
    ("QTASKS_RUNNING_OLDER_TASKS", "Yes", "running_older_tasks", True),
    ("QTASKS_DELETE_FINISHED_TASKS", "off", "delete_finished_tasks", False),
    ("QTASKS_LOGS_DEFAULT_LEVEL_SERVER", "warning", "logs_default_level_server", logging.WARNING),
    ("QTASKS_LOGS_DEFAULT_LEVEL_SERVER", "10", "logs_default_level_server", logging.DEBUG),
    ("QTASKS_RESULT_STATUSES_END", "success, error", "result_statuses_end", ["success", "error"]),
    ("QTASKS_BROKER_URL", "tcp://127.0.0.1:7001", "broker_url", "tcp://127.0.0.1:7001"),
    ("QTASKS_HEARTBEAT_LIVENESS", "5", "heartbeat_liveness", 5),
])
def test_an_environment_variable_overrides_its_field_cast_to_the_fields_type(monkeypatch, variable, raw, field,
                                                                             value):
    monkeypatch.setenv(variable, raw)
    assert getattr(QueueConfig(), field) == value


@pytest.mark.parametrize("variable, raw, message", [
    ("QTASKS_MAX_TASKS_PROCESS", "ten", "QTASKS_MAX_TASKS_PROCESS='ten' is not a whole number"),
    ("QTASKS_SHUTDOWN_GRACE", "soon", "QTASKS_SHUTDOWN_GRACE='soon' is not a number"),
    ("QTASKS_RUNNING_OLDER_TASKS", "maybe", "QTASKS_RUNNING_OLDER_TASKS='maybe' is not a boolean: 1/true/yes/on"),
    ("QTASKS_LOGS_DEFAULT_LEVEL_SERVER", "loud", "QTASKS_LOGS_DEFAULT_LEVEL_SERVER='loud' is not a log level"),
    ("QTASKS_TASK_DEFAULT_DECODE", "str", "QTASKS_TASK_DEFAULT_DECODE cannot be set from the environment"),
    ("QTASKS_MAX_TASKS_PROCESS", "0", "QueueConfig.max_tasks_process must be a number greater than 0, got 0"),
])
def test_a_value_that_cannot_be_cast_is_an_error_naming_the_variable(monkeypatch, variable, raw, message):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        QueueConfig()


def test_the_prefix_is_the_configs_own(monkeypatch):
    monkeypatch.setenv("QTASKS_MAX_TASKS_PROCESS", "2")
    monkeypatch.setenv("BILLING_MAX_TASKS_PROCESS", "7")
    assert QueueConfig(environ_prefix="BILLING_").max_tasks_process == 7


def test_settings_out_of_range_are_refused_in_code_too():
    with pytest.raises(ConfigError, match="heartbeat_interval must be a number greater than 0"):
        QueueConfig(heartbeat_interval=0)
    config = QueueConfig()
    with pytest.raises(ConfigError, match="shutdown_grace must be a number of seconds"):
        config.shutdown_grace = -1
    assert config.shutdown_grace == 30.0


def test_subscribers_see_every_assignment_and_unknown_names_become_dynamic_fields():
    config = QueueConfig()
    seen = []
    config.subscribe(lambda c, key, value: seen.append((c is config, key, value)))
    config.max_tasks_process = 3
    config.team = "billing"
    assert seen == [(True, "max_tasks_process", 3), (True, "team", "billing")]
    assert config.team == "billing"
    with pytest.raises(AttributeError, match="QueueConfig has no setting 'nothing'"):
        assert config.nothing is None


def test_the_broker_component_follows_its_config():
    app = QueueTasks(name="follows", config=QueueConfig(broker_url="tcp://127.0.0.1:7002"))
    assert app.broker.url == "tcp://127.0.0.1:7002"
    app.config.broker_url = "tcp://127.0.0.1:7003"
    app.config.broker_connect_timeout = 0.5
    assert (app.broker.url, app.broker.connect_timeout) == ("tcp://127.0.0.1:7003", 0.5)
    replacement = QueueConfig(broker_connect_timeout=2.0)
    app.update_config(replacement)
    assert app.broker.connect_timeout == 2.0 and app.worker.config is replacement
    app.config.broker_connect_timeout = 3.0
    assert app.broker.connect_timeout == 3.0
    assert QueueTasks(name="explicit", broker_url="tcp://127.0.0.1:7004",
                      config=QueueConfig(broker_url="tcp://127.0.0.1:7005")).broker.url == "tcp://127.0.0.1:7004"


def test_update_config_and_the_environment_reach_the_worker_processes_and_the_hosted_broker():
    url = f"tcp://127.0.0.1:{free_port()}"
    proc = popen([sys.executable, "-m", "qtasks", "-A", "tests.apps.configured:app", "run", "--processes", "1",
                  "--broker", url], env={"QTASKS_MAX_TASKS_PROCESS": "3"}, stderr=subprocess.PIPE)
    client = QueueTasks(name="configured", broker_url=url)
    try:
        # the broker this app hosts took the config's settings
        read_line_matching(proc, r"broker serving .* \(max attempts 5, heartbeat 0\.2 s x 3\)", 30, stream="stderr")
        wait_for_workers(client, 1)
        assert [w["concurrency"] for w in client.broker_stats()["workers"]] == [3]
        seen = client.add_task("seen_config", timeout=20).returning
        assert seen == {"same": True, "shutdown_grace": 1.5, "max_tasks_process": 3}
    finally:
        client.close()
        assert stop_process(proc) == 0


def test_the_cli_refuses_a_bad_variable_naming_it():
    proc = popen([sys.executable, "-m", "qtasks", "-A", "tests.apps.configured:app", "run"],
                 env={"QTASKS_SHUTDOWN_GRACE": "a while"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode == 2
    assert "QTASKS_SHUTDOWN_GRACE='a while' is not a number such as 2.5; fix the value or unset the variable" in err
