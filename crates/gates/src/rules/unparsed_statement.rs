use migration_parser::{Operation, StatementKind};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Reports statements deployclaw could not verify: statements `sqlparser` could not parse
    /// (and that token-level recognition did not identify either), statements too large
    /// for the parser to analyse (over half a million tokens), and `DO` blocks, whose procedural code no static rule can see into.
    ///
    /// ## Why is this bad?
    /// No rule checked them: they may take any lock, rewrite any table or drop data. The
    /// message includes the parser's error so you can tell a typo from unsupported syntax.
    ///
    /// Severity **yellow**: a human has to review what deployclaw could not.
    ///
    /// ## Safe alternative
    /// Prefer plain DDL over `DO` blocks; when a statement is fine as written, review it and
    /// silence the finding for that statement:
    /// ```sql
    /// -- deployclaw:ignore unparsed-statement
    /// DO $$ BEGIN PERFORM 1; END $$;
    /// ```
    pub struct UnparsedStatement {
        code: "DC901",
        name: "unparsed-statement",
        severity: Yellow,
    }
}

impl GateRule for UnparsedStatement {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for stmt in ctx.statements() {
            let is_do = stmt
                .operations
                .iter()
                .any(|op| matches!(op, Operation::Do { .. }));
            let message = match &stmt.kind {
                StatementKind::Unparsed { error, .. } => {
                    let opaque = stmt
                        .operations
                        .iter()
                        .any(|op| matches!(op, Operation::Other { .. }));
                    if stmt.kind.is_too_large() {
                        format!("could not be verified: {error}, so no rule checked it")
                    } else if is_do {
                        format!(
                            "DO block: procedural code that no rule can verify (sqlparser: {error})"
                        )
                    } else if stmt.operations.is_empty() || opaque {
                        format!(
                            "could not be verified: sqlparser cannot parse this statement ({error}), so no rule checked it"
                        )
                    } else {
                        // Recognised at token level: the rules saw its operations.
                        continue;
                    }
                }
                _ if is_do => "DO block: procedural code that no rule can verify".to_string(),
                _ => continue,
            };
            out.push(ctx.finding(self, stmt, message).with_help(
                "Review it by hand; if it is safe, silence it with `-- deployclaw:ignore unparsed-statement` on the line \
                 before",
            ));
        }
        out
    }
}
