package xds

// translatedCount is how many proxy translations s has run.
func translatedCount(s *Server) int64 { return s.translated.Load() }
