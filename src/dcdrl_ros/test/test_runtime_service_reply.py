"""The service's reply-reader check (runtime.service.Service._client_reader_matched) with fake endpoints:
discovery can change between listing the matched readers and reading one of them (a client going
away while the server answers during shutdown); that must not raise out of the executor."""
from types import SimpleNamespace

import pytest
from cyclonedds.core import Policy

from dcdrl_ros.runtime.service import Service


def _endpoint(client_id: str) -> SimpleNamespace:
    return SimpleNamespace(qos={Policy.Userdata: SimpleNamespace(data=f'clientid={client_id};'.encode())})


class _Writer:
    def __init__(self, readers: dict) -> None:
        self.readers = readers   # handle -> endpoint, or an exception raised when it is read

    def get_matched_subscriptions(self) -> list:
        return list(self.readers)

    def get_matched_subscription_data(self, handle):
        found = self.readers[handle]
        if isinstance(found, Exception):
            raise found
        return found


def _service(readers: dict, requester: str = 'c1') -> tuple[Service, list[str]]:
    """A Service without DDS (only the endpoints the check reads) and the warnings it logs."""
    service = object.__new__(Service)
    service.srv_name = 'recognize_faces'
    service.reader = SimpleNamespace(get_matched_publication_data=lambda handle: _endpoint(requester))
    service.writer = _Writer(readers)
    warnings: list[str] = []
    service._node = SimpleNamespace(get_logger=lambda: SimpleNamespace(warning=warnings.append))
    return service, warnings


def test_a_reader_that_vanishes_while_listed_is_skipped_and_the_client_still_found():
    service, _ = _service({1: Exception('Callfunc cqos errored.'), 2: _endpoint('c1')})
    assert service._client_reader_matched(7) is True


@pytest.mark.parametrize('readers', [{1: Exception('Callfunc cqos errored.')}, {1: _endpoint('other')}])
def test_no_matched_reply_reader_drops_the_reply_with_a_warning(readers, monkeypatch):
    monkeypatch.setattr(Service, 'REPLY_MATCH_WAIT_SEC', 0.0)
    service, warnings = _service(readers)
    assert service._client_reader_matched(7) is False
    assert warnings and 'reply dropped' in warnings[0]
