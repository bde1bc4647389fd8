pytest_plugins = ["salesforce_sync.emulator.pytest_plugin"]
