"""salesforce-sync: keep an audience store in step with Salesforce, as a Dagster pipeline."""
