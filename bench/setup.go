package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// benchPassword is the password of every user the harness registers.
const benchPassword = "Bench-password-1234"

// user is a registered user with the access and refresh tokens of a
// fresh login.
type user struct {
	id, email, access, refresh string
}

// registerUsers registers n users on p and logs each in, a few at a time.
func registerUsers(ctx context.Context, p *proc, n int) ([]user, error) {
	tag := randomHex(4)
	users := make([]user, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range users {
		g.Go(func() error {
			email := fmt.Sprintf("bench-%s-%d@example.com", tag, i)
			var reg struct {
				Data struct {
					UserID string `json:"user_id"`
				} `json:"data"`
			}
			body := map[string]string{"email": email, "password": benchPassword, "name": "Bench User " + string(rune('A'+i%26))}
			if err := postJSON(ctx, p.base+"/api/v1/users", body, http.StatusCreated, &reg); err != nil {
				return fmt.Errorf("register: %w", err)
			}
			var login struct {
				Data struct {
					Access  string `json:"access"`
					Refresh string `json:"refresh"`
				} `json:"data"`
			}
			if err := postJSON(ctx, p.base+"/api/v1/users/login", loginBody(email), http.StatusOK, &login); err != nil {
				return fmt.Errorf("login: %w", err)
			}
			users[i] = user{id: reg.Data.UserID, email: email, access: login.Data.Access, refresh: login.Data.Refresh}
			return nil
		})
	}
	return users, g.Wait()
}

func loginBody(email string) map[string]string {
	return map[string]string{"email": email, "password": benchPassword}
}

func postJSON(ctx context.Context, url string, body any, want int, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, rb)
	}
	return json.Unmarshal(rb, out)
}

// saveBodies writes what p answers to a GET of u and of its preferences,
// for the bare server to answer with.
func saveBodies(ctx context.Context, p *proc, u user, dir string) error {
	for file, path := range map[string]string{bareUserFile: "/", barePrefsFile: "/preferences"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/users/"+u.id+path, nil)
		req.Header.Set("Authorization", "Bearer "+u.access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s answered %d: %s", path, resp.StatusCode, b)
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// privateDatabase creates a fresh database on the server of pgURL and
// returns its URL and a function that drops it (and only it).
func privateDatabase(ctx context.Context, pgURL string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	name := "usersvc_bench_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("postgres: create database: %w", err)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: drop database", name+":", err)
		}
		conn.Close(ctx)
	}
	return u.String(), drop, nil
}

// claimKey marks a Redis database as the harness's for the run.
const claimKey = "usersvc-bench:claimed"

// privateRedisDB finds a Redis database numbered 1 to 15 that is empty,
// claims it, and returns its URL and a function that empties it again
// (only it: database 0 and any database holding keys are never touched).
func privateRedisDB(ctx context.Context, redisURL string) (string, func(), error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return "", nil, fmt.Errorf("redis: %w", err)
	}
	for db := 1; db <= 15; db++ {
		o := *opt
		o.DB = db
		c := redis.NewClient(&o)
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			c.Close()
			return "", nil, fmt.Errorf("redis: %w", err)
		}
		if n > 0 {
			c.Close()
			continue
		}
		claimed, err := c.SetNX(ctx, claimKey, randomHex(8), 0).Result()
		if err != nil || !claimed {
			c.Close()
			continue
		}
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 1 { // someone else came in too
			c.Del(ctx, claimKey)
			c.Close()
			continue
		}
		u, err := url.Parse(redisURL)
		if err != nil {
			c.Close()
			return "", nil, err
		}
		u.Path = "/" + strconv.Itoa(db)
		release := func() {
			ctx := context.WithoutCancel(ctx)
			if err := c.FlushDB(ctx).Err(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: empty redis database", db, ":", err)
			}
			c.Close()
		}
		return u.String(), release, nil
	}
	return "", nil, fmt.Errorf("redis: no empty database among 1 to 15 on %s", opt.Addr)
}
