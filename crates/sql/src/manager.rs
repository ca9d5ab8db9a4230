//! The tenant's SQL sources: registration (which checks the allow-list
//! against the database and sets up read-only access), removal (which
//! takes that access away again), and one pooled backend per source,
//! replaced when its registration changes.

use crate::check::{check_query, Dialect};
use crate::engine::{self, Backend, TableSchema};
use crate::spec::{redact, Engine, SqlSecrets, SqlSourceConfig, SqlSourceInput};
use crate::table::ResultTable;
use crate::walls::SqlPolicy;
use crate::{SqlError, KIND};
use roster_core::TenantId;
use roster_secrets::{Secret, SecretBox};
use roster_store::{integration_event, DynStore, Integration, NewIntegration, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a source's schema, as shown to agents, is reused.
const SCHEMA_TTL: Duration = Duration::from_secs(60);

struct Source {
    id: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    config: SqlSourceConfig,
    backend: Arc<dyn Backend>,
    schema: Mutex<Option<(Instant, Arc<Vec<TableSchema>>)>>,
}

pub struct SqlSources {
    store: DynStore,
    secrets: SecretBox,
    policy: SqlPolicy,
    sources: Mutex<HashMap<(TenantId, String), Arc<Source>>>,
}

/// The sealing context of a source's URL: moved to another row, it does
/// not open.
pub fn secret_context(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{KIND}/{name}")
}

impl SqlSources {
    pub fn new(store: DynStore, secrets: SecretBox, policy: SqlPolicy) -> Arc<Self> {
        Arc::new(Self {
            store,
            secrets,
            policy,
            sources: Mutex::new(HashMap::new()),
        })
    }

    /// Registers a source: checks the policy allows where the URL points,
    /// that the URL reaches the database, that every allow-listed table and
    /// column exists, and sets up the read-only access queries will use;
    /// only then stores it, with its audit event (actor `actor`).
    pub async fn register(
        &self,
        tenant: &TenantId,
        input: SqlSourceInput,
        actor: &str,
    ) -> Result<Integration, SqlError> {
        let (engine, allow, limits) = input.validate()?;
        if self
            .store
            .get_integration(tenant, KIND, &input.name)
            .await?
            .is_some()
        {
            return Err(SqlError::Store(StoreError::Conflict(format!(
                "a SQL source named `{}` exists",
                input.name
            ))));
        }
        let provisioned =
            engine::provision(engine, &input.url, &allow, &input.name, &self.policy).await?;
        let config = SqlSourceConfig {
            engine,
            location: redact(&input.url),
            mariadb: provisioned.mariadb,
            allow: provisioned.allow,
            description: input.description,
            access: provisioned.access,
            limits,
        };
        let secrets = SqlSecrets {
            url: input.url,
            role_password: provisioned.role_password,
        };
        let stored = self
            .store_new(tenant, &input.name, &config, &secrets, actor)
            .await;
        if stored.is_err() {
            if let Err(e) = engine::deprovision(&config, &secrets, &self.policy).await {
                tracing::warn!(source = %input.name, error = %e, "could not remove the read-only role of a registration that failed");
            }
        }
        stored
    }

    async fn store_new(
        &self,
        tenant: &TenantId,
        name: &str,
        config: &SqlSourceConfig,
        secrets: &SqlSecrets,
        actor: &str,
    ) -> Result<Integration, SqlError> {
        let plain = serde_json::to_string(secrets)
            .map_err(|e| SqlError::Invalid(format!("cannot encode credentials: {e}")))?;
        let sealed = self
            .secrets
            .seal(&Secret::new(plain), &secret_context(tenant, name));
        let config = serde_json::to_value(config)
            .map_err(|e| SqlError::Invalid(format!("cannot encode config: {e}")))?;
        let audit = integration_event(actor, KIND, "add", name, config.clone());
        Ok(self
            .store
            .create_integration(
                tenant,
                NewIntegration::new(KIND, name, config, Some(sealed)),
                audit,
            )
            .await?)
    }

    /// The stored registration, or `NotFound`.
    pub async fn registration(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(Integration, SqlSourceConfig), SqlError> {
        let stored = self
            .store
            .get_integration(tenant, KIND, name)
            .await?
            .ok_or_else(|| SqlError::NotFound(format!("no SQL source `{name}`")))?;
        let config = serde_json::from_value(stored.config.clone())
            .map_err(|e| SqlError::Invalid(format!("stored config of `{name}`: {e}")))?;
        Ok((stored, config))
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(Integration, SqlSourceConfig)>, SqlError> {
        let mut out = Vec::new();
        for stored in self.store.list_integrations(tenant, KIND).await? {
            let config = serde_json::from_value(stored.config.clone()).map_err(|e| {
                SqlError::Invalid(format!("stored config of `{}`: {e}", stored.name))
            })?;
            out.push((stored, config));
        }
        Ok(out)
    }

    fn open_secrets(
        &self,
        tenant: &TenantId,
        stored: &Integration,
    ) -> Result<SqlSecrets, SqlError> {
        let sealed = stored
            .sealed
            .as_deref()
            .ok_or_else(|| SqlError::Secret("no stored URL".into()))?;
        let opened = self
            .secrets
            .open(sealed, &secret_context(tenant, &stored.name))
            .map_err(|e| SqlError::Secret(e.to_string()))?;
        serde_json::from_str(opened.expose())
            .map_err(|_| SqlError::Secret("sealed credentials are malformed".into()))
    }

    async fn source(&self, tenant: &TenantId, name: &str) -> Result<Arc<Source>, SqlError> {
        let key = (tenant.clone(), name.to_owned());
        let (stored, config) = match self.registration(tenant, name).await {
            Ok(found) => found,
            Err(e) => {
                let gone = self
                    .sources
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                if let Some(gone) = gone {
                    gone.backend.close().await;
                }
                return Err(e);
            }
        };
        let cached = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(source) = cached {
            if source.id == stored.id && source.updated_at == stored.updated_at {
                return Ok(source);
            }
            source.backend.close().await;
        }
        let secrets = self.open_secrets(tenant, &stored)?;
        let source = Arc::new(Source {
            id: stored.id,
            updated_at: stored.updated_at,
            backend: engine::open(&config, &secrets, &self.policy).await?,
            config,
            schema: Mutex::new(None),
        });
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, source.clone());
        Ok(source)
    }

    /// Removes a source and the read-only role Roster created for it, the
    /// removal audited (actor `actor`). If the database cannot be reached
    /// the registration still goes, and the role left behind is named in
    /// the log.
    pub async fn remove(&self, tenant: &TenantId, name: &str, actor: &str) -> Result<(), SqlError> {
        let (stored, config) = self.registration(tenant, name).await?;
        let gone = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.clone(), name.to_owned()));
        if let Some(gone) = gone {
            gone.backend.close().await;
        }
        match self.open_secrets(tenant, &stored) {
            Ok(secrets) => {
                if let Err(e) = engine::deprovision(&config, &secrets, &self.policy).await {
                    tracing::warn!(source = name, access = ?config.access, error = %e, "could not drop the source's read-only role; drop it by hand");
                }
            }
            Err(e) => {
                tracing::warn!(source = name, access = ?config.access, error = %e, "could not open the source's URL to drop its read-only role; drop it by hand");
            }
        }
        let audit = integration_event(
            actor,
            KIND,
            "remove",
            name,
            serde_json::json!({ "engine": config.engine, "location": config.location }),
        );
        self.store
            .delete_integration(tenant, KIND, name, audit)
            .await?;
        Ok(())
    }

    /// The allow-listed tables with their allowed columns, as agents see them.
    pub async fn schema(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(SqlSourceConfig, Arc<Vec<TableSchema>>), SqlError> {
        let source = self.source(tenant, name).await?;
        if let Some((at, schema)) = source
            .schema
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if at.elapsed() < SCHEMA_TTL {
                return Ok((source.config.clone(), schema.clone()));
            }
        }
        let schema = Arc::new(source.backend.describe(&source.config.allow).await?);
        *source.schema.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), schema.clone()));
        Ok((source.config.clone(), schema))
    }

    /// Checks and runs one read-only query.
    pub async fn query(
        &self,
        tenant: &TenantId,
        name: &str,
        sql: &str,
    ) -> Result<ResultTable, SqlError> {
        let source = self.source(tenant, name).await?;
        let config = &source.config;
        let dialect = match config.engine {
            Engine::Postgres => Dialect::Postgres,
            Engine::Mysql => Dialect::Mysql,
            Engine::Sqlite => Dialect::Sqlite,
        };
        let checked = check_query(dialect, sql, &config.allow, config.limits.max_rows)?;
        source
            .backend
            .query(&config.allow, &checked, &config.limits)
            .await
    }

    /// Runs `sql` without Roster's own check, as `query` would run a checked
    /// statement. Only for tests that show the database refuses by itself.
    #[doc(hidden)]
    pub async fn query_unchecked(
        &self,
        tenant: &TenantId,
        name: &str,
        sql: &str,
    ) -> Result<ResultTable, SqlError> {
        let source = self.source(tenant, name).await?;
        source
            .backend
            .query(&source.config.allow, sql, &source.config.limits)
            .await
    }

    /// Closes every pool (shutdown).
    pub async fn shutdown(&self) {
        let sources: Vec<Arc<Source>> = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for source in sources {
            source.backend.close().await;
        }
    }
}
