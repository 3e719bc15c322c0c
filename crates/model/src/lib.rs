//! Generated from the AWS botocore models by `cargo xtask codegen`: shapes, enums, constraints, errors and service specs.
