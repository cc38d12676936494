//! Exit codes (DESIGN.md): 0 green, 1 yellow, 2 red, 3 usage or input error, 4 fleet unreachable.

/// All gates green (or yellow with `--allow-yellow`).
pub const GREEN: i32 = 0;
/// Yellow: approval needed.
pub const YELLOW: i32 = 1;
/// Red: must not ship.
pub const RED: i32 = 2;
/// Usage or input error.
pub const INPUT: i32 = 3;
/// Could not reach or read the fleet.
pub const UNREACHABLE: i32 = 4;
