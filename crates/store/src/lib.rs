//! Storage: the backend trait, the embedded SQLite backend, and the sealed store that passes every value through the barrier.
