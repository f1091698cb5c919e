package postgres

// Listening reports whether the store's change listener is connected (and
// so whether it caches); tests wait for it instead of sleeping.
func (s *PolicyStore) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listening
}
