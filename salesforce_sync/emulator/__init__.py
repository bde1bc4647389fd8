"""An emulated Salesforce org: HTTPS REST, Bulk API 2.0 and OAuth for tests, benchmarks and the demo."""

from salesforce_sync.emulator.harness import EmulatedOrg

__all__ = ["EmulatedOrg"]
