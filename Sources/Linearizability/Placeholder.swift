// Linearizability checker: see Checker.swift.
