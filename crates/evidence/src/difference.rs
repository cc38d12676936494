//! What a [`CatalogDifference`] is about, typed: its kind (the `kind` of its JSON form) and the
//! object it names, for drift items and messages.

use crate::CatalogDifference;

impl CatalogDifference {
    /// The kind, as the JSON form's `kind` tag spells it (`missing_column`, `extra_index`, ...).
    pub fn kind(&self) -> &'static str {
        use CatalogDifference as D;
        match self {
            D::MissingTable { .. } => "missing_table",
            D::ExtraTable { .. } => "extra_table",
            D::TableDiffers { .. } => "table_differs",
            D::MissingColumn { .. } => "missing_column",
            D::ExtraColumn { .. } => "extra_column",
            D::ColumnTypeDiffers { .. } => "column_type_differs",
            D::NullabilityDiffers { .. } => "nullability_differs",
            D::DefaultDiffers { .. } => "default_differs",
            D::ColumnDiffers { .. } => "column_differs",
            D::MissingConstraint { .. } => "missing_constraint",
            D::ExtraConstraint { .. } => "extra_constraint",
            D::ConstraintDefinitionDiffers { .. } => "constraint_definition_differs",
            D::ConstraintValidatedDiffers { .. } => "constraint_validated_differs",
            D::MissingIndex { .. } => "missing_index",
            D::ExtraIndex { .. } => "extra_index",
            D::IndexDefinitionDiffers { .. } => "index_definition_differs",
            D::IndexValidDiffers { .. } => "index_valid_differs",
            D::MissingSequence { .. } => "missing_sequence",
            D::ExtraSequence { .. } => "extra_sequence",
            D::SequenceDiffers { .. } => "sequence_differs",
            D::MissingEnum { .. } => "missing_enum",
            D::ExtraEnum { .. } => "extra_enum",
            D::EnumLabelsDiffer { .. } => "enum_labels_differ",
            D::CommentDiffers { .. } => "comment_differs",
            D::ColumnOrderDiffers { .. } => "column_order_differs",
            D::MissingObject { .. } => "missing_object",
            D::ExtraObject { .. } => "extra_object",
            D::ObjectDiffers { .. } => "object_differs",
        }
    }

    /// The object it is about: `column t.c`, `constraint c on t`, `index i on t`, `table t`,
    /// `sequence s`, `name e` (an enum), or the object of the deep (exact) differences.
    pub fn object(&self) -> String {
        use CatalogDifference as D;
        match self {
            D::MissingColumn { table, column, .. }
            | D::ExtraColumn { table, column, .. }
            | D::ColumnTypeDiffers { table, column, .. }
            | D::NullabilityDiffers { table, column, .. }
            | D::DefaultDiffers { table, column, .. }
            | D::ColumnDiffers { table, column, .. } => format!("column {table}.{column}"),
            D::MissingConstraint {
                table, constraint, ..
            }
            | D::ExtraConstraint {
                table, constraint, ..
            }
            | D::ConstraintDefinitionDiffers {
                table, constraint, ..
            }
            | D::ConstraintValidatedDiffers {
                table, constraint, ..
            } => {
                format!("constraint {constraint} on {table}")
            }
            D::MissingIndex { table, index, .. }
            | D::ExtraIndex { table, index, .. }
            | D::IndexDefinitionDiffers { table, index, .. }
            | D::IndexValidDiffers { table, index, .. } => format!("index {index} on {table}"),
            D::MissingTable { table, .. }
            | D::ExtraTable { table, .. }
            | D::TableDiffers { table, .. }
            | D::CommentDiffers { table, .. }
            | D::ColumnOrderDiffers { table, .. } => format!("table {table}"),
            D::MissingSequence { sequence, .. }
            | D::ExtraSequence { sequence, .. }
            | D::SequenceDiffers { sequence, .. } => format!("sequence {sequence}"),
            D::MissingEnum { name, .. }
            | D::ExtraEnum { name, .. }
            | D::EnumLabelsDiffer { name, .. } => format!("name {name}"),
            D::MissingObject { object, .. }
            | D::ExtraObject { object, .. }
            | D::ObjectDiffers { object, .. } => object.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed kind is the JSON form's tag, for every variant the differ produces here.
    #[test]
    fn kind_is_the_json_tag() {
        let samples = [
            CatalogDifference::MissingTable { table: "t".into() },
            CatalogDifference::ExtraColumn {
                table: "t".into(),
                column: "c".into(),
                data_type: "int".into(),
            },
            CatalogDifference::EnumLabelsDiffer {
                name: "e".into(),
                expected: vec![],
                actual: vec![],
            },
            CatalogDifference::IndexValidDiffers {
                table: "t".into(),
                index: "i".into(),
                expected: true,
                actual: false,
            },
        ];
        for d in samples {
            let json = serde_json::to_value(&d).unwrap();
            assert_eq!(json["kind"], d.kind());
        }
    }
}
