/* SPDX-License-Identifier: MIT */
/* ashm top: the region view of ls, refreshed, with what ashmd says of
 * purging and what the kernel says of memory pressure. Interactive
 * (ncurses) on a terminal, else a batch of frames as text or JSON, as
 * top -b does. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#if HAVE_NCURSES
#include <curses.h>
#endif

#include "cli.h"
#include "fd-util.h"
#include "futex-util.h"
#include "ls.h"
#include "macro.h"
#include "protocol.h"

/* The orders the 's' key cycles through, decreasing. */
static const char *const sort_keys[] = { "-resident", "-size", "-unpinned", "-purged", "-pinned", "-holders" };

struct frame {
        struct ls_scan regions;
        bool daemon;
        struct proto_status_rep st;
        uint64_t at_ns;
        /* Rates since the previous frame; NAN on the first. */
        double purges_per_s, purged_bytes_per_s;
        bool psi;
        double psi_some, psi_full; /* avg10, percent */
        int64_t resident, pinned, unpinned, purged, holders;
};

struct top_options {
        unsigned long iterations; /* 0: until q (interactive) or forever */
        double delay_s;
        bool json, batch;
        size_t sort;
};

static void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

static void frame_done(struct frame *f) {
        ls_scan_done(&f->regions);
}

/* The kernel's PSI line: "some avg10=1.23 avg60=... total=...". */
static bool read_psi(double *ret_some, double *ret_full) {
        _cleanup_(fclosep) FILE *f = fopen("/proc/pressure/memory", "re");
        char line[256];
        bool some = false, full = false;

        if (!f)
                return false;
        *ret_full = 0;
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "some avg10=%lf", ret_some) == 1)
                        some = true;
                else if (sscanf(line, "full avg10=%lf", ret_full) == 1)
                        full = true;
        }
        return some || full;
}

static int frame_take(struct frame *f, const struct frame *prev) {
        struct ls_scan all;
        int r;

        *f = (struct frame) { .purges_per_s = NAN, .purged_bytes_per_s = NAN };
        r = ls_scan(&all);
        if (r < 0)
                return r;
        r = ls_regions(&all, NULL, &f->regions);
        if (r >= 0) {
                /* The region rows point into the daemon's list. */
                f->regions.pins = TAKE_PTR(all.pins);
                f->regions.n_pins = all.n_pins;
        }
        ls_scan_done(&all);
        if (r < 0)
                return r;
        f->at_ns = clock_monotonic_ns();
        f->daemon = cli_daemon_status(&f->st) >= 0;
        if (f->daemon && prev && prev->daemon && prev->st.pid == f->st.pid && f->at_ns > prev->at_ns) {
                double dt = (double) (f->at_ns - prev->at_ns) / 1e9;

                f->purges_per_s = (double) (f->st.purges - prev->st.purges) / dt;
                f->purged_bytes_per_s = (double) (f->st.purged_total - prev->st.purged_total) / dt;
        }
        f->psi = read_psi(&f->psi_some, &f->psi_full);
        for (size_t i = 0; i < f->regions.n; i++) {
                const struct ls_row *row = &f->regions.rows[i];

                f->resident += MAX(row->resident, 0);
                f->holders += row->holders;
                if (row->pins) {
                        f->pinned += ls_pin_bytes(row->pins->pinned);
                        f->unpinned += ls_pin_bytes(row->pins->unpinned);
                        f->purged += ls_pin_bytes(row->pins->purged);
                }
        }
        return 0;
}

static void put_rate(FILE *out, double bytes_per_s, double per_s) {
        char size[32];

        if (isnan(per_s)) {
                fputs("-", out);
                return;
        }
        format_size_u64((uint64_t) llround(bytes_per_s), size, sizeof(size));
        fprintf(out, "%.1f/s (%s/s)", per_s, size);
}

/* The summary lines above the table. */
static void put_summary(FILE *out, const struct frame *f) {
        char a[32], b[32], c[32], d[32];
        time_t now = time(NULL);
        struct tm tm;

        localtime_r(&now, &tm);
        strftime(a, sizeof(a), "%H:%M:%S", &tm);
        fprintf(out, "ashm top - %s  regions: %zu  holders: %" PRIi64 "  ", a, f->regions.n, f->holders);
        if (f->daemon) {
                format_duration(f->st.uptime_ms, b, sizeof(b));
                fprintf(out, "ashmd: pid %" PRIu64 ", up %s\n", f->st.pid, b);
        } else
                fputs("ashmd: not running\n", out);
        format_size(f->resident, a, sizeof(a));
        format_size(f->pinned, b, sizeof(b));
        format_size(f->unpinned, c, sizeof(c));
        format_size(f->purged, d, sizeof(d));
        fprintf(out, "resident: %s  pinned: %s  unpinned: %s  purged: %s\n", a, b, c, d);
        fputs("purges: ", out);
        put_rate(out, f->purged_bytes_per_s, f->purges_per_s);
        if (f->daemon)
                fprintf(out, ", %" PRIu64 " since start", f->st.purges);
        if (f->psi)
                fprintf(out, "  pressure: some %.2f%% full %.2f%% (avg10)", f->psi_some, f->psi_full);
        else
                fputs("  pressure: unknown (no /proc/pressure/memory)", out);
        fputc('\n', out);
}

/* The whole screen as text, in a buffer to be freed. */
static char *render(struct frame *f, const struct top_options *o) {
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        int r;

        if (!out)
                return NULL;
        put_summary(out, f);
        fputc('\n', out);
        r = ls_table(out, &f->regions, true, NULL, sort_keys[o->sort], false, false);
        if (fclose(out) != 0 || r < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static void json_put_number(const char *key, double v) {
        if (isnan(v))
                printf(",\"%s\":null", key);
        else
                printf(",\"%s\":%.3f", key, v);
}

static void put_json(struct frame *f, const struct top_options *o) {
        printf("{\"time\":%lld", (long long) time(NULL));
        if (f->daemon)
                printf(",\"ashmd\":{\"pid\":%" PRIu64 ",\"uptime_ms\":%" PRIu64 ",\"purges\":%" PRIu64
                       ",\"purged_total\":%" PRIu64 ",\"pressure_events\":%" PRIu64 "}",
                       f->st.pid, f->st.uptime_ms, f->st.purges, f->st.purged_total, f->st.pressure_events);
        else
                fputs(",\"ashmd\":null", stdout);
        printf(",\"resident\":%" PRIi64 ",\"pinned\":%" PRIi64 ",\"unpinned\":%" PRIi64 ",\"purged\":%" PRIi64,
               f->resident, f->pinned, f->unpinned, f->purged);
        json_put_number("purges_per_s", f->purges_per_s);
        json_put_number("purged_bytes_per_s", f->purged_bytes_per_s);
        if (f->psi)
                printf(",\"pressure\":{\"some_avg10\":%.2f,\"full_avg10\":%.2f}", f->psi_some, f->psi_full);
        else
                fputs(",\"pressure\":null", stdout);
        /* In the order of the table. */
        (void) ls_table(NULL, &f->regions, true, NULL, sort_keys[o->sort], false, false);
        fputs(",\"regions\":[", stdout);
        for (size_t i = 0; i < f->regions.n; i++) {
                if (i)
                        putchar(',');
                ls_json_put_region(&f->regions.rows[i]);
        }
        puts("]}");
}

/* Between batch frames. (The interactive view waits in getch().) */
static void wait_delay(double delay_s) {
        struct timespec ts = { .tv_sec = (time_t) delay_s,
                               .tv_nsec = (long) ((delay_s - (double) (time_t) delay_s) * 1e9) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int run_batch(const struct top_options *o) {
        struct frame prev = {}, cur;
        bool have_prev = false;
        int r = 0;

        for (unsigned long i = 0; o->iterations == 0 || i < o->iterations; i++) {
                if (i > 0)
                        wait_delay(o->delay_s);
                r = frame_take(&cur, have_prev ? &prev : NULL);
                if (r < 0)
                        break;
                if (o->json)
                        put_json(&cur, o);
                else {
                        _cleanup_free_ char *text = render(&cur, o);

                        if (!text) {
                                frame_done(&cur);
                                r = -ENOMEM;
                                break;
                        }
                        printf("%s%s", i ? "\n" : "", text);
                }
                if (have_prev)
                        frame_done(&prev);
                prev = cur;
                have_prev = true;
                errno = 0;
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        if (have_prev)
                                frame_done(&prev);
                        return cli_stdout_error(errno > 0 ? errno : EIO);
                }
        }
        if (have_prev)
                frame_done(&prev);
        if (r < 0) {
                fprintf(stderr, "ashm top: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

#if HAVE_NCURSES
static void draw(const char *text, const struct top_options *o) {
        int y = 0, table_header = -1;

        erase();
        for (const char *l = text; *l && y < LINES; y++) {
                size_t len = strcspn(l, "\n");

                /* The table's header follows the blank line. */
                if (table_header < 0 && len == 0)
                        table_header = y + 1;
                if (y == table_header)
                        attron(A_REVERSE);
                mvaddnstr(y, 0, l, (int) MIN(len, (size_t) COLS));
                if (y == table_header) {
                        /* The bar spans the screen, as top's does. */
                        for (int x = (int) MIN(len, (size_t) COLS); x < COLS; x++)
                                addch(' ');
                        attroff(A_REVERSE);
                }
                l += len + (l[len] == '\n');
        }
        if (y < LINES)
                mvprintw(LINES - 1, 0, "q: quit  s: sort (%s)  space: refresh", sort_keys[o->sort] + 1);
        refresh();
}

static int run_interactive(struct top_options *o) {
        struct frame prev = {}, cur;
        bool have_prev = false;
        int r = 0;

        if (!initscr()) {
                fputs("ashm top: cannot set up the terminal\n", stderr);
                return EXIT_FAILURE;
        }
        cbreak();
        noecho();
        curs_set(0);
        keypad(stdscr, TRUE);
        timeout((int) (o->delay_s * 1000));
        for (;;) {
                _cleanup_free_ char *text = NULL;
                int c;

                r = frame_take(&cur, have_prev ? &prev : NULL);
                if (r < 0)
                        break;
                text = render(&cur, o);
                if (have_prev)
                        frame_done(&prev);
                prev = cur;
                have_prev = true;
                if (!text) {
                        r = -ENOMEM;
                        break;
                }
                draw(text, o);
                c = getch();
                if (c == 'q' || c == 'Q')
                        break;
                if (c == 's')
                        o->sort = (o->sort + 1) % ELEMENTSOF(sort_keys);
        }
        endwin();
        if (have_prev)
                frame_done(&prev);
        if (r < 0) {
                fprintf(stderr, "ashm top: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
#endif

static int top_args(int argc, char *argv[], struct top_options *o) {
        static const struct option options[] = {
                { "iterations", required_argument, NULL, 'n' },
                { "delay", required_argument, NULL, 'd' },
                { "batch", no_argument, NULL, 'b' },
                { "json", no_argument, NULL, 'j' },
                { "sort", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        char *end;
        int c;

        *o = (struct top_options) { .delay_s = 2 };
        while ((c = getopt_long(argc, argv, ":hn:d:b", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        errno = 0;
                        o->iterations = strtoul(optarg, &end, 10);
                        if (errno || *end || end == optarg || optarg[0] == '-' || o->iterations == 0) {
                                fprintf(stderr, "ashm top: invalid number of iterations '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        o->batch = true;
                        break;
                case 'd':
                        o->delay_s = strtod(optarg, &end);
                        if (*end || end == optarg || !(o->delay_s >= 0.1 && o->delay_s <= 3600)) {
                                fprintf(stderr, "ashm top: invalid delay '%s' (0.1 to 3600 seconds)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'b':
                        o->batch = true;
                        break;
                case 'j':
                        o->json = o->batch = true;
                        break;
                case 's':
                        o->sort = ELEMENTSOF(sort_keys);
                        for (size_t i = 0; i < ELEMENTSOF(sort_keys); i++)
                                if (strcasecmp(optarg, sort_keys[i] + 1) == 0)
                                        o->sort = i;
                        if (o->sort == ELEMENTSOF(sort_keys)) {
                                fprintf(stderr,
                                        "ashm top: cannot sort by '%s' (resident, size, unpinned, purged, "
                                        "pinned or holders)\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        cli_verb_help("top", stdout);
                        return EXIT_SUCCESS;
                default:
                        return cli_bad_option("top", c, argv);
                }
        if (optind < argc) {
                fprintf(stderr, "ashm top: unexpected argument '%s'; see 'ashm help top'\n", argv[optind]);
                return EXIT_USAGE;
        }
        return -1;
}

int verb_top(int argc, char *argv[]) {
        struct top_options o;
        int r;

        r = top_args(argc, argv, &o);
        if (r >= 0)
                return r;
        /* Looking must not start a daemon to look at. */
        cli_no_autostart();
        if (!o.batch && !isatty(STDOUT_FILENO)) {
                /* Into a pipe, one frame, as ls would. */
                o.batch = true;
                o.iterations = 1;
        }
        if (o.batch)
                return run_batch(&o);
#if HAVE_NCURSES
        return run_interactive(&o);
#else
        fputs("ashm top: this ashm was built without ncurses: use -n N or --json\n", stderr);
        return EXIT_FAILURE;
#endif
}
