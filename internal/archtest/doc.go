// Package archtest holds the test that enforces the import rules between
// coord's layers (DESIGN.md §2).
package archtest
