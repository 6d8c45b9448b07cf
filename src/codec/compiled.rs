//! Route rules with their paths parsed once, at config load.

use crate::error::{Error, Result};
use crate::select::{Condition, FieldPath, LeakPolicy, Location, RouteRules};

/// A route's rules, ready for the body pipeline.
#[derive(Clone, Debug)]
pub struct CompiledRules {
    rules: RouteRules,
    paths: Vec<FieldPath>,
    conds: Vec<Option<FieldPath>>,
    scopes: Vec<Option<FieldPath>>,
}

impl CompiledRules {
    /// Parse every path of every rule. Errors name the rule and the path.
    pub fn compile(rules: &RouteRules) -> Result<CompiledRules> {
        let mut paths = Vec::with_capacity(rules.fields.len());
        let mut conds = Vec::with_capacity(rules.fields.len());
        let mut scopes = Vec::with_capacity(rules.fields.len());
        for (i, f) in rules.fields.iter().enumerate() {
            let ctx = |e: Error| Error::Config(format!("field rule {i}: {e}"));
            paths.push(FieldPath::parse(&f.path).map_err(ctx)?);
            conds.push(match &f.when {
                Some(c) => {
                    if c.equals.is_none() && c.any_of.is_empty() {
                        return Err(Error::Config(format!(
                            "field rule {i} (`{}`): `when` needs `equals` or `in`",
                            f.path
                        )));
                    }
                    Some(FieldPath::parse(&c.field).map_err(ctx)?)
                }
                None => None,
            });
            scopes.push(match &f.scope {
                Some(s) => Some(FieldPath::parse(s).map_err(ctx)?),
                None => None,
            });
        }
        Ok(CompiledRules {
            rules: rules.clone(),
            paths,
            conds,
            scopes,
        })
    }

    /// The rules as configured.
    pub fn rules(&self) -> &RouteRules {
        &self.rules
    }

    /// Whether the leak guard scans this route.
    pub fn guard_on(&self) -> bool {
        self.rules.leak_guard != LeakPolicy::Allow
    }

    /// Whether any rule reads the given location.
    pub fn has_rules_at(&self, location: Location) -> bool {
        self.rules.fields.iter().any(|f| f.location == location)
    }

    /// (rule index, path) of the rules at a location.
    pub(crate) fn paths_at(&self, location: Location) -> impl Iterator<Item = (usize, &FieldPath)> {
        self.rules
            .fields
            .iter()
            .zip(&self.paths)
            .enumerate()
            .filter(move |(_, (f, _))| f.location == location)
            .map(|(i, (_, p))| (i, p))
    }

    /// (rule index, condition, condition path) of the conditional rules at a location.
    pub(crate) fn conditions_at(
        &self,
        location: Location,
    ) -> impl Iterator<Item = (usize, &Condition, &FieldPath)> {
        self.rules
            .fields
            .iter()
            .zip(&self.conds)
            .enumerate()
            .filter(move |(_, (f, _))| f.location == location)
            .filter_map(|(i, (f, c))| Some((i, f.when.as_ref()?, c.as_ref()?)))
    }

    /// The parsed `scope` path of a rule.
    pub(crate) fn scope(&self, rule: usize) -> Option<&FieldPath> {
        self.scopes.get(rule)?.as_ref()
    }
}
