"""Typed integrations config: which Salesforce orgs feed which project, loaded from YAML."""

from salesforce_sync.config.errors import ConfigError, SecretNotSetError
from salesforce_sync.config.loader import CONFIG_ENV_VAR, DEMO_CONFIG_PATH, config_path, load_config, parse_config
from salesforce_sync.config.models import (
    OBJECT_TYPES,
    OPERATORS,
    OPT_OUT_PROPERTY,
    PROPERTY_TYPES,
    STORE_COLUMN_TYPES,
    AuthConfig,
    EmulatorOptions,
    FieldMapping,
    IntegrationConfig,
    ObjectConfig,
    ObjectType,
    Operator,
    Project,
    PropertyType,
    SyncConfig,
    SyncRule,
    SyncRules,
    default_mappings,
    effective_mappings,
)
from salesforce_sync.config.schedule import ALLOWED_FREQUENCIES, partition_cron, window_minutes
from salesforce_sync.config.secrets import Credentials, resolve_credentials
from salesforce_sync.config.status import Badge, integration_status, missing_settings

__all__ = [
    "ALLOWED_FREQUENCIES", "CONFIG_ENV_VAR", "DEMO_CONFIG_PATH", "OBJECT_TYPES", "OPERATORS",
    "OPT_OUT_PROPERTY", "PROPERTY_TYPES", "STORE_COLUMN_TYPES", "AuthConfig", "Badge", "ConfigError",
    "Credentials", "EmulatorOptions", "FieldMapping", "IntegrationConfig", "ObjectConfig", "ObjectType",
    "Operator", "Project", "PropertyType", "SecretNotSetError", "SyncConfig", "SyncRule", "SyncRules",
    "config_path", "default_mappings", "effective_mappings", "integration_status", "load_config",
    "missing_settings", "parse_config", "partition_cron", "resolve_credentials", "window_minutes",
]
