// Command aiproxy-go is an OpenAI-compatible HTTP proxy built on net/http and the aiproxy Go
// binding: clients speak the OpenAI API (chat completions, embeddings) to it, and it talks to the
// provider named in its configuration, translating requests, streamed (SSE) responses, buffered
// responses and errors; it performs context callouts and answers invalid requests locally.
//
// Usage:
//
//	aiproxy-go -config provider.json [-listen 127.0.0.1:8080] [-upstream-override host:port]
//
// The configuration is the plugin's JSON ({"provider": {"type": "...", "apiTokens": [...]}}).
// Once listening, the proxy prints "LISTENING <port>" on stdout; logs go to stderr, one line per
// exchange with its token usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	aiproxy "github.com/aiproxy/aiproxy/bindings/go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aiproxy-go:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen   = flag.String("listen", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
		cfgPath  = flag.String("config", "", "path of the provider configuration (JSON)")
		override = flag.String("upstream-override", "", "send every upstream request and callout to this host:port over plain HTTP, keeping the provider's Host (for tests)")
		scheme   = flag.String("upstream-scheme", "https", "scheme of upstream requests when not overridden")
		maxBody  = flag.Int64("max-request-bytes", 32<<20, "largest client request body accepted")
		verbose  = flag.Bool("v", false, "log at debug level")
	)
	flag.Parse()
	if *cfgPath == "" {
		flag.Usage()
		return errors.New("-config is required")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	js, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	cfg, err := aiproxy.NewConfig(js)
	if err != nil {
		var e *aiproxy.Error
		if errors.As(err, &e) && e.Field != "" {
			return fmt.Errorf("%s: %w (field %s)", *cfgPath, err, e.Field)
		}
		return fmt.Errorf("%s: %w", *cfgPath, err)
	}
	defer cfg.Close()

	transport := &http.Transport{
		Proxy:               nil, // never route provider traffic through an environment proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		DisableCompression:  true, // the core must see the provider's bytes as sent
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	proxy := &Proxy{
		Config:          cfg,
		Client:          &http.Client{Transport: transport, CheckRedirect: noRedirects},
		Scheme:          *scheme,
		Override:        *override,
		MaxRequestBytes: *maxBody,
		Log:             logger,
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Printf("LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	logger.Info("listening", "addr", ln.Addr().String(), "aiproxy", aiproxy.Version(), "override", *override)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// noRedirects hands upstream redirects to the client unchanged.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
