/*
 * shstk native fast path: shadow-stack enforcement at Unicorn block boundaries.
 *
 * Unicorn always ends a translation block after a near CALL, RET or SYSCALL
 * (UNICORN-NOTES.md), so a block hook can decide, at the *next* block entry,
 * what the previous block's last instruction did:
 *   - after a CALL, push its return address (the end of the previous block)
 *     on the shadow stack;
 *   - after a RET, the new block address *is* the popped return address:
 *     compare it with the shadow-stack top (full 64 bits) and pop.
 * A mismatch is #CP(near-ret). #CP is a fault, so the RET is rewound (RIP back
 * to the RET, RSP back by 8 + imm16, SSP untouched) before stopping: a handler
 * that repairs the shadow stack can return and the RET is retried.
 *
 * Python keeps everything else (decoding, CET instructions, the kernel). This
 * file is deliberately small: no Unicorn or capstone headers; Unicorn entry
 * points are passed in as function pointers, so the object only needs a C
 * compiler to build. The pure-Python engine (engine.py) mirrors this logic
 * line for line and must give identical results.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define K_NONE 0
#define K_CALL 1
#define K_RET 2

#define EV_NONE 0
#define EV_CP 1       /* control-protection fault, code in event_code */
#define EV_SSFAULT 2  /* shadow-stack access to a non-shadow-stack page */
#define EV_BUDGET 3   /* quantum used up: stopped at a block start */
#define EV_DECODE 4   /* decode callback asked to stop (error) */

#define L0_SIZE 1024 /* entries of the direct-mapped block cache (a power of two) */

#define CET_SHSTK_EN 1u
#define SSR_WRITABLE 1u

#define DECODE_OK 0
#define DECODE_RESTART 1
#define DECODE_STOP 2

typedef int (*uc_reg_read_t)(void *uc, int regid, void *value);
typedef int (*uc_reg_write_t)(void *uc, int regid, const void *value);
typedef int (*uc_emu_stop_t)(void *uc);

typedef void (*code_hook_t)(void *uc, uint64_t addr, uint32_t size, void *user_data);
typedef int (*cs_iter_t)(size_t handle, const uint8_t **code, size_t *size, uint64_t *address,
                         void *insn); /* cs_disasm_iter (returns bool) */

struct ss_cpu;
typedef int (*decode_cb_t)(struct ss_cpu *cpu, uint64_t addr, uint32_t size);
/* Called for an address no VMA covers: may map it (stack growth); 1 = look again. */
typedef int (*miss_cb_t)(struct ss_cpu *cpu, uint64_t addr, int type);

typedef struct {
    uint64_t start, end; /* guest virtual range */
    uint64_t phys;       /* physical address of start (inside the arena) */
    uint64_t perms;      /* UC_PROT_* for the TLB entry */
    uint64_t host;       /* host address of start (for the decoder) */
} ss_vma;

/* struct uc_tlb_entry from unicorn.h */
typedef struct {
    uint64_t paddr;
    int perms;
} uc_tlb_entry;

#define UC_PROT_READ 1
#define UC_PROT_WRITE 2
#define UC_PROT_EXEC 4
#define UC_MEM_READ 16
#define UC_MEM_WRITE 17
#define UC_MEM_FETCH 18

typedef struct {
    uint64_t addr; /* block start; 0 = empty slot */
    uint64_t last; /* address of the block's last instruction */
    uint32_t size;
    uint32_t ninsns;
    uint16_t kind;
    uint16_t ret_imm;
    uint32_t pad;
} ss_block;

typedef struct {
    uint64_t start, end; /* guest range of one shadow-stack VMA */
    uint64_t host;       /* host address of start */
    uint64_t flags;      /* SSR_WRITABLE: VM_WRITE set (shadow-stack access allowed) */
} ss_region;

typedef struct ss_cpu {
    /* state of the running thread (saved/restored by the kernel on switches) */
    uint64_t ssp;
    uint64_t cet;          /* U_CET bits: SHSTK_EN, WRSS_EN */
    uint64_t pending;      /* K_CALL / K_RET armed by the current block */
    uint64_t pending_addr; /* CALL: return address; RET: address of the RET */
    uint64_t pending_insn; /* CALL: address of the CALL */
    uint64_t pending_imm;  /* RET imm16 */
    /* last event, read by Python after uc_emu_start returns */
    uint64_t event;
    uint64_t event_code;
    uint64_t event_addr;     /* faulting shadow-stack address */
    uint64_t event_rip;      /* instruction the fault is reported at */
    uint64_t event_expected; /* #CP: value on the shadow stack */
    uint64_t event_actual;   /* #CP: return address taken from the normal stack */
    uint64_t event_write;    /* SSFAULT: 1 for a push, 0 for a read */
    /* accounting (per address space) */
    uint64_t blocks;
    uint64_t insns;
    uint64_t budget; /* stop once `blocks` reaches this; 0 = no budget */
    /* shadow-stack VMAs, sorted by start */
    uint64_t nregions;
    uint64_t cap_regions;
    ss_region *regions;    /* the first region: regions_off entries into the allocation */
    uint64_t last_region;
    uint64_t regions_off;  /* free entries before it (see sorted_open) */
    uint64_t dead_regions; /* emptied entries (see sorted_close) */
    /* decoded blocks: open addressing, capacity a power of two */
    uint64_t cache_mask;
    uint64_t cache_used;
    ss_block *cache;
    /* Unicorn entry points and register ids */
    uc_reg_read_t reg_read;
    uc_reg_write_t reg_write;
    uc_emu_stop_t emu_stop;
    decode_cb_t decode;
    int64_t reg_rip;
    int64_t reg_rsp;
    /* the page table: VMAs sorted by start, with their physical base and protection */
    uint64_t nvmas;
    uint64_t cap_vmas;
    ss_vma *vmas;      /* the first VMA: vmas_off entries into the allocation */
    uint64_t vmas_off; /* free entries before it (see sorted_open) */
    uint64_t dead_vmas; /* emptied entries (see sorted_close) */
    miss_cb_t miss;
    /* the last translation that failed (read by Python after UC_ERR_EXCEPTION) */
    uint64_t mmu_addr;
    uint64_t mmu_type;
    uint64_t mmu_present;
    uint64_t tlb_fills;
    /* emu_start's `until` page: Unicorn translates it (for fetch) when a run ends */
    uint64_t exit_page;
    uint64_t exit_phys;
    /* CET instructions the site hook does not handle itself go to Python */
    code_hook_t cet_slow;
    /* capstone, for decoding blocks here (cs_disasm_iter on a handle without detail);
     * offsets into its cs_insn come from the Python binding's description of it */
    cs_iter_t cs_iter;
    uint64_t cs_handle;
    uint8_t *cs_insn;
    uint64_t cs_off_address, cs_off_size, cs_off_mnemonic, cs_off_op_str;
    uint64_t native_decodes;
    /* a small direct-mapped copy of the hot blocks, in front of the hash table: the
     * hook runs once per executed block, and a probe of the big table there costs as
     * much as the rest of the hook (cache misses, a loop, a copy) */
    ss_block l0[L0_SIZE];
} ss_cpu;

/* One hooked CET instruction (UC_HOOK_CODE on its address; Unicorn runs it as a NOP). */
typedef struct {
    ss_cpu *cpu;
    uint64_t op;  /* CET_* below */
    int64_t reg;  /* Unicorn id of the 64-bit register operand */
} ss_cet_site;

#define CET_RDSSPQ 1
#define CET_RDSSPD 2
#define CET_INCSSPQ 3

size_t ss_sizeof_cpu(void) { return sizeof(ss_cpu); }
size_t ss_sizeof_cet_site(void) { return sizeof(ss_cet_site); }
size_t ss_sizeof_block(void) { return sizeof(ss_block); }
size_t ss_sizeof_region(void) { return sizeof(ss_region); }
size_t ss_sizeof_vma(void) { return sizeof(ss_vma); }

static inline uint64_t hash_addr(uint64_t addr) {
    return (addr ^ (addr >> 17)) * 0x9E3779B97F4A7C15ull;
}

static inline ss_block *l0_slot(ss_cpu *c, uint64_t addr) {
    return &c->l0[(addr * 0x9E3779B97F4A7C15ull) >> 54 & (L0_SIZE - 1)];
}

static void l0_clear(ss_cpu *c) { memset(c->l0, 0, sizeof c->l0); }

int ss_cache_init(ss_cpu *c, uint64_t log2cap) {
    uint64_t cap = 1ull << log2cap;
    ss_block *t = calloc(cap, sizeof(ss_block));
    if (!t) return -1;
    free(c->cache);
    c->cache = t;
    c->cache_mask = cap - 1;
    c->cache_used = 0;
    l0_clear(c);
    return 0;
}

static ss_block *cache_find(ss_cpu *c, uint64_t addr) {
    uint64_t i = (hash_addr(addr) >> 20) & c->cache_mask;
    for (;;) {
        ss_block *b = &c->cache[i];
        if (b->addr == addr || b->addr == 0) return b;
        i = (i + 1) & c->cache_mask;
    }
}

static int cache_grow(ss_cpu *c) {
    uint64_t oldcap = c->cache_mask + 1;
    ss_block *old = c->cache;
    ss_block *t = calloc(oldcap * 2, sizeof(ss_block));
    if (!t) return -1;
    c->cache = t;
    c->cache_mask = oldcap * 2 - 1;
    c->cache_used = 0;
    for (uint64_t i = 0; i < oldcap; i++) {
        if (old[i].addr) {
            *cache_find(c, old[i].addr) = old[i];
            c->cache_used++;
        }
    }
    free(old);
    return 0;
}

int ss_cache_insert(ss_cpu *c, const ss_block *blk) {
    if (!blk->addr) return -1;
    ss_block *hot = l0_slot(c, blk->addr);
    if (hot->addr == blk->addr) hot->addr = 0;
    if ((c->cache_used + 1) * 4 > (c->cache_mask + 1) * 3 && cache_grow(c) != 0) return -1;
    ss_block *b = cache_find(c, blk->addr);
    if (!b->addr) c->cache_used++;
    *b = *blk;
    return 0;
}

/* Forget blocks that overlap [start, end): code unmapped, remapped or rewritten.
 * Rebuilds the table, since open addressing cannot simply punch holes. */
void ss_cache_invalidate(ss_cpu *c, uint64_t start, uint64_t end) {
    l0_clear(c);
    uint64_t cap = c->cache_mask + 1;
    ss_block *old = c->cache;
    ss_block *t = calloc(cap, sizeof(ss_block));
    if (!t) return;
    c->cache = t;
    c->cache_used = 0;
    for (uint64_t i = 0; i < cap; i++) {
        ss_block *b = &old[i];
        if (!b->addr) continue;
        if (b->addr < end && b->addr + b->size > start) continue;
        *cache_find(c, b->addr) = *b;
        c->cache_used++;
    }
    free(old);
}

int ss_cache_lookup(ss_cpu *c, uint64_t addr, ss_block *out) {
    ss_block *b = cache_find(c, addr);
    if (!b->addr) return 0;
    *out = *b;
    return 1;
}

/* --- sorted arrays with free room at both ends ------------------------------------ */

/* The page table and the shadow-stack regions are arrays sorted by start. mmap places
 * top-down, so a new thread's stack goes near the low end while the threads that exit
 * first have their stacks near the high end: each array keeps free entries at both ends
 * and an edit moves whichever side of it is shorter, a few entries rather than the whole
 * array (30,000 threads: 90,000 VMAs, 30,000 regions). `*first` points at entry 0,
 * `*off` entries into the allocation. */

/* Open a free entry at index i. */
static int sorted_open(void **first, uint64_t *off, uint64_t *n, uint64_t *cap, size_t esz,
                       uint64_t i) {
    char *a = (char *)*first;
    uint64_t len = *n;
    int front = i < len - i; /* the entries before i are the fewer: move those */
    if (front && *off > 0) {
        memmove(a - esz, a, i * esz);
        *first = a - esz;
        (*off)--;
    } else if (!front && *off + len < *cap) {
        memmove(a + (i + 1) * esz, a + i * esz, (len - i) * esz);
    } else {
        /* no room on the short side: a new allocation with as much free room as entries
         * on each side, so the next n edits on either side move only their side */
        uint64_t ncap = 3 * len + 64, noff = len + 32;
        char *base = malloc(ncap * esz);
        if (!base) return -1;
        if (a) {
            memcpy(base + noff * esz, a, i * esz);
            memcpy(base + (noff + i + 1) * esz, a + i * esz, (len - i) * esz);
            free(a - *off * esz);
        }
        *first = base + noff * esz;
        *off = noff;
        *cap = ncap;
    }
    *n = len + 1;
    return 0;
}

/* Both entry types begin with their range. */
typedef struct {
    uint64_t start, end;
} ss_range;

static inline int entry_empty(const char *a, size_t esz, uint64_t i) {
    const ss_range *r = (const ss_range *)(a + i * esz);
    return r->end == r->start;
}

/* Remove the entry at index i. At either end of the array it goes; in the middle it is
 * emptied instead (end = start: no address is in it, and the array stays sorted by start
 * and by end, so every binary search still works), and the array is compacted once half
 * of it is empty. Deletions in the middle are the common case at thread exit: glibc keeps
 * an exited thread's stack mapped (its stack cache), so the shadow stacks that go sit
 * among stacks that stay, and closing the gap moved O(n) entries each time. */
static void sorted_close(void **first, uint64_t *off, uint64_t *n, uint64_t *dead, size_t esz,
                         uint64_t i) {
    char *a = (char *)*first;
    if (i == 0) {
        *first = a + esz;
        (*off)++;
        (*n)--;
        return;
    }
    if (i == *n - 1) {
        (*n)--;
        return;
    }
    ss_range *r = (ss_range *)(a + i * esz);
    r->end = r->start;
    (*dead)++;
    if (*dead * 2 <= *n || *n < 64) return;
    uint64_t kept = 0;
    for (uint64_t k = 0; k < *n; k++) {
        if (entry_empty(a, esz, k)) continue;
        if (kept != k) memcpy(a + kept * esz, a + k * esz, esz);
        kept++;
    }
    *n = kept;
    *dead = 0;
}

/* Remove the emptied entries from index k on that a new or grown range up to `end` now
 * covers: left inside it, they would break both orders and so the binary searches. This
 * moves entries, but only when a mapping is placed over a different place than the one
 * that went (a new version at the same start revives its entry instead). */
static void purge_covered(void **first, uint64_t *off, uint64_t *n, uint64_t *dead,
                          size_t esz, uint64_t k, uint64_t end) {
    char *a = (char *)*first;
    uint64_t j = k;
    while (j < *n && entry_empty(a, esz, j) && ((ss_range *)(a + j * esz))->start < end) j++;
    if (j == k) return;
    uint64_t gone = j - k;
    if (k < *n - j) { /* fewer entries before: move them up */
        memmove(a + gone * esz, a, k * esz);
        *first = a + gone * esz;
        *off += gone;
    } else {
        memmove(a + k * esz, a + j * esz, (*n - j) * esz);
    }
    *n -= gone;
    *dead -= gone;
}

/* The allocation behind a sorted array. */
static void sorted_free(void *first, uint64_t off, size_t esz) {
    if (first) free((char *)first - off * esz);
}

/* Index of the first region that starts at or above `start`. */
static uint64_t region_lower_bound(ss_cpu *c, uint64_t start) {
    uint64_t lo = 0, hi = c->nregions;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (c->regions[mid].start < start) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Insert one shadow-stack region (regions never overlap) or replace the one at `start`. */
int ss_region_add(ss_cpu *c, uint64_t start, uint64_t end, uint64_t host, uint64_t flags) {
    uint64_t i = region_lower_bound(c, start);
    c->last_region = 0;
    int empty = i < c->nregions && entry_empty((char *)c->regions, sizeof(ss_region), i);
    if (i < c->nregions && (c->regions[i].start == start || (empty && c->regions[i].start < end))) {
        /* the region at this start (a new version), or an emptied entry it covers */
        if (empty) c->dead_regions--;
    } else if (sorted_open((void **)&c->regions, &c->regions_off, &c->nregions,
                           &c->cap_regions, sizeof(ss_region), i) != 0) {
        return -1;
    }
    c->regions[i] = (ss_region){start, end, host, flags};
    purge_covered((void **)&c->regions, &c->regions_off, &c->nregions, &c->dead_regions,
                  sizeof(ss_region), i + 1, end);
    return 0;
}

int ss_region_del(ss_cpu *c, uint64_t start) {
    uint64_t i = region_lower_bound(c, start);
    if (i >= c->nregions || c->regions[i].start != start ||
        entry_empty((char *)c->regions, sizeof(ss_region), i)) /* none, or emptied already */
        return -1;
    sorted_close((void **)&c->regions, &c->regions_off, &c->nregions, &c->dead_regions,
                 sizeof(ss_region), i);
    c->last_region = 0;
    return 0;
}

void ss_free(ss_cpu *c) {
    free(c->cache);
    sorted_free(c->regions, c->regions_off, sizeof(ss_region));
    sorted_free(c->vmas, c->vmas_off, sizeof(ss_vma));
    c->cache = NULL;
    c->regions = NULL;
    c->vmas = NULL;
    c->nregions = c->cap_regions = c->regions_off = c->dead_regions = 0;
    c->nvmas = c->cap_vmas = c->vmas_off = c->dead_vmas = 0;
}

/* --- the page table --------------------------------------------------------------- */

/* Index of the first VMA whose end is above addr. */
static uint64_t vma_lower_bound(ss_cpu *c, uint64_t addr) {
    uint64_t lo = 0, hi = c->nvmas;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (c->vmas[mid].end <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Insert or replace the VMA starting at `start` (VMAs never overlap). */
int ss_vma_set(ss_cpu *c, uint64_t start, uint64_t end, uint64_t phys, uint64_t perms,
               uint64_t host) {
    uint64_t i = vma_lower_bound(c, start); /* the first entry that ends above start */
    int empty = i < c->nvmas && entry_empty((char *)c->vmas, sizeof(ss_vma), i);
    if (i < c->nvmas && c->vmas[i].start == start && !empty) {
        /* a new version of this VMA */
    } else if (empty && c->vmas[i].start < end) {
        c->dead_vmas--; /* an emptied entry the new VMA covers takes it */
    } else if (sorted_open((void **)&c->vmas, &c->vmas_off, &c->nvmas, &c->cap_vmas,
                           sizeof(ss_vma), i) != 0) {
        return -1;
    }
    c->vmas[i].start = start;
    c->vmas[i].end = end;
    c->vmas[i].phys = phys;
    c->vmas[i].perms = perms;
    c->vmas[i].host = host;
    /* (after the write: moving the entries before i moves this one too) */
    purge_covered((void **)&c->vmas, &c->vmas_off, &c->nvmas, &c->dead_vmas, sizeof(ss_vma),
                  i + 1, end);
    return 0;
}

int ss_vma_del(ss_cpu *c, uint64_t start) {
    uint64_t i = vma_lower_bound(c, start);
    if (i >= c->nvmas || c->vmas[i].start != start) return -1;
    sorted_close((void **)&c->vmas, &c->vmas_off, &c->nvmas, &c->dead_vmas, sizeof(ss_vma), i);
    return 0;
}

static ss_vma *vma_find(ss_cpu *c, uint64_t addr) {
    uint64_t i = vma_lower_bound(c, addr);
    if (i < c->nvmas && c->vmas[i].start <= addr) return &c->vmas[i];
    return NULL;
}

/* UC_HOOK_TLB_FILL: translate a guest page through the VMA table. A missing or
 * forbidden translation is remembered and refused: Unicorn then stops with a fault
 * at the instruction, and Python turns it into the signal. */
int ss_tlb_fill(void *uc, uint64_t vaddr, int type, uc_tlb_entry *e, void *user_data) {
    ss_cpu *c = (ss_cpu *)user_data;
    c->tlb_fills++;
    if (vaddr == c->exit_page && type == UC_MEM_FETCH && c->exit_phys) {
        e->paddr = c->exit_phys;
        e->perms = UC_PROT_EXEC;
        return 1;
    }
    ss_vma *v = vma_find(c, vaddr);
    if (!v && c->miss && c->miss(c, vaddr, type)) v = vma_find(c, vaddr);
    uint64_t need = type == UC_MEM_WRITE ? UC_PROT_WRITE
                    : type == UC_MEM_FETCH ? UC_PROT_EXEC : UC_PROT_READ;
    if (!v || !(v->perms & need)) {
        c->mmu_addr = vaddr;
        c->mmu_type = (uint64_t)type;
        c->mmu_present = v != NULL;
        return 0;
    }
    e->paddr = v->phys + (vaddr - v->start);
    e->perms = (int)v->perms;
    return 1;
}

void *ss_tlb_fill_ptr(void) { return (void *)&ss_tlb_fill; }

/* The rare paths of the hooks below are out of line (COLD): the common path of the block
 * hook, which runs once per executed block, then saves one register instead of six
 * (issue 18: the hook's share of fib's instructions went down by a fifth). */
#define COLD __attribute__((noinline, cold))

static ss_region *search_region(ss_cpu *c, uint64_t addr);

/* The shadow-stack VMA holding [addr, addr+8), or NULL. */
static inline ss_region *find_region(ss_cpu *c, uint64_t addr) {
    if (c->last_region < c->nregions) {
        ss_region *r = &c->regions[c->last_region];
        if (addr >= r->start && addr + 8 <= r->end) return r;
    }
    return search_region(c, addr);
}

static COLD ss_region *search_region(ss_cpu *c, uint64_t addr) {
    uint64_t lo = 0, hi = c->nregions;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        ss_region *r = &c->regions[mid];
        if (addr < r->start) hi = mid;
        else if (addr >= r->end) lo = mid + 1;
        else {
            if (addr + 8 > r->end) return NULL;
            c->last_region = mid;
            return r;
        }
    }
    return NULL;
}

/* A shadow-stack access needs a shadow-stack page that is writable (VM_WRITE),
 * reads included: Linux treats every shadow-stack fault as a write fault. */
static inline uint64_t *ss_slot(ss_cpu *c, uint64_t addr) {
    ss_region *r = find_region(c, addr);
    if (!r || !(r->flags & SSR_WRITABLE)) return NULL;
    return (uint64_t *)(uintptr_t)(r->host + (addr - r->start));
}

static uint64_t reg_get(ss_cpu *c, void *uc, int64_t reg) {
    uint64_t v = 0;
    c->reg_read(uc, (int)reg, &v);
    return v;
}

static void reg_set(ss_cpu *c, void *uc, int64_t reg, uint64_t v) {
    c->reg_write(uc, (int)reg, &v);
}

/* Undo a CALL whose shadow-stack push faulted: back to the CALL, RSP as before. */
static void rewind_call(ss_cpu *c, void *uc) {
    reg_set(c, uc, c->reg_rsp, reg_get(c, uc, c->reg_rsp) + 8);
    reg_set(c, uc, c->reg_rip, c->pending_insn);
}

/* Undo a RET that faulted: back to the RET, the return address on the stack again. */
static void rewind_ret(ss_cpu *c, void *uc) {
    reg_set(c, uc, c->reg_rsp, reg_get(c, uc, c->reg_rsp) - 8 - c->pending_imm);
    reg_set(c, uc, c->reg_rip, c->pending_addr);
}

static void stop_with(ss_cpu *c, void *uc, uint64_t ev) {
    c->event = ev;
    c->emu_stop(uc);
}

/* The CALL's shadow-stack push faulted (not a writable shadow-stack page). */
static COLD void call_push_fault(ss_cpu *c, void *uc) {
    c->event_code = 0;
    c->event_addr = c->ssp - 8;
    c->event_rip = c->pending_insn;
    c->event_write = 1;
    rewind_call(c, uc);
    stop_with(c, uc, EV_SSFAULT);
}

/* The RET's shadow-stack read faulted (slot NULL), or the addresses differ: #CP. */
static COLD void ret_fault(ss_cpu *c, void *uc, const uint64_t *slot, uint64_t target) {
    if (!slot) {
        c->event_code = 0;
        c->event_addr = c->ssp;
        c->event_rip = c->pending_addr;
        c->event_write = 0;
        rewind_ret(c, uc);
        stop_with(c, uc, EV_SSFAULT);
        return;
    }
    c->event_code = 1; /* near ret */
    c->event_addr = 0;
    c->event_rip = c->pending_addr;
    c->event_expected = *slot;
    c->event_actual = target;
    rewind_ret(c, uc);
    stop_with(c, uc, EV_CP);
}

/* Complete the CALL or RET that ended the previous block; 0 if it faulted. */
static inline int resolve_pending(ss_cpu *c, void *uc, uint64_t target) {
    uint64_t kind = c->pending;
    c->pending = K_NONE;
    if (kind == K_CALL) {
        uint64_t *slot = ss_slot(c, c->ssp - 8);
        if (__builtin_expect(!slot, 0)) {
            call_push_fault(c, uc);
            return 0;
        }
        *slot = c->pending_addr;
        c->ssp -= 8;
    } else if (kind == K_RET) {
        uint64_t *slot = ss_slot(c, c->ssp);
        if (__builtin_expect(!slot || *slot != target, 0)) {
            ret_fault(c, uc, slot, target);
            return 0;
        }
        c->ssp += 8;
    }
    return 1;
}

/* --- decoding blocks ---------------------------------------------------------- */

#define MAX_BLOCK_BYTES 8192 /* a translation block spans at most two pages */

/* The block's bytes, as far as they are mapped (mm.read_code in Python). */
static uint32_t read_code(ss_cpu *c, uint64_t addr, uint8_t *buf, uint32_t size) {
    uint32_t got = 0;
    while (got < size) {
        ss_vma *v = vma_find(c, addr + got);
        if (!v || !v->host) break;
        uint64_t n = v->end - (addr + got);
        if (n > size - got) n = size - got;
        memcpy(buf + got, (const void *)(uintptr_t)(v->host + (addr + got - v->start)), n);
        got += (uint32_t)n;
    }
    return got;
}

/* FF /3 is CALL m16:64 (far); capstone names it plain `call`. */
static int far_indirect_call(const uint8_t *raw, uint64_t n) {
    static const uint8_t legacy[] = {0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64,
                                     0x65, 0xF0};
    uint64_t i = 0;
    while (i < n && memchr(legacy, raw[i], sizeof legacy)) i++;
    if (i < n && raw[i] >= 0x40 && raw[i] <= 0x4F) i++;
    return i + 1 < n && raw[i] == 0xFF && ((raw[i + 1] >> 3) & 7) == 3;
}

static int is_nop_cet(const char *mn) {
    return !strcmp(mn, "rdsspq") || !strcmp(mn, "rdsspd") || !strcmp(mn, "incsspq") ||
           !strcmp(mn, "incsspd");
}

/* decode.py's Decoder.block, in C: 1 when the block went into the cache, 0 when Python
 * must decode it (no decoder here, or a CET instruction that needs a hook). */
static int native_decode(ss_cpu *c, uint64_t addr, uint32_t size) {
    if (!c->cs_iter || size > MAX_BLOCK_BYTES) return 0;
    uint8_t buf[MAX_BLOCK_BYTES];
    uint32_t n = read_code(c, addr, buf, size);
    const uint8_t *p = buf;
    size_t left = n;
    uint64_t a = addr, last = addr, last_size = 0;
    uint32_t count = 0;
    const char *mn = (const char *)c->cs_insn + c->cs_off_mnemonic;
    while (c->cs_iter((size_t)c->cs_handle, &p, &left, &a, c->cs_insn)) {
        count++;
        last = *(const uint64_t *)(c->cs_insn + c->cs_off_address);
        last_size = *(const uint16_t *)(c->cs_insn + c->cs_off_size);
        if (is_nop_cet(mn)) return 0;
    }
    ss_block b = {0};
    b.addr = addr;
    b.last = last;
    b.size = n;
    b.ninsns = count;
    b.kind = K_NONE;
    /* Only an instruction that really ends the block is a transfer we track. */
    if (count && last + last_size == addr + n) {
        const char *op = strrchr(mn, ' '); /* drop bnd / notrack / rep prefixes */
        op = op ? op + 1 : mn;
        if (!strcmp(op, "call")) {
            if (!far_indirect_call(buf + (last - addr), n - (last - addr))) b.kind = K_CALL;
        } else if (!strcmp(op, "ret")) {
            const char *ops = (const char *)c->cs_insn + c->cs_off_op_str;
            b.kind = K_RET;
            b.ret_imm = ops[0] ? (uint16_t)strtoull(ops, NULL, 0) : 0;
        }
    }
    if (ss_cache_insert(c, &b) != 0) return 0;
    c->native_decodes++;
    return 1;
}

int ss_resolve_pending(ss_cpu *c, void *uc, uint64_t target) {
    return resolve_pending(c, uc, target);
}

/* The block's quantum is used up: stop at its start (it did not run; it is counted
 * when it does). */
static COLD void budget_spent(ss_cpu *c, void *uc) {
    c->blocks--;
    stop_with(c, uc, EV_BUDGET);
}

/* The block starts to run: count it, and note the CALL or RET that ends it. */
static inline void enter_block(ss_cpu *c, uint64_t addr, uint32_t size, const ss_block *b) {
    c->insns += b->ninsns;
    if (!(c->cet & CET_SHSTK_EN) || b->kind == K_NONE) return;
    c->pending = b->kind;
    if (b->kind == K_CALL) {
        c->pending_addr = addr + size;
        c->pending_insn = b->last;
    } else {
        c->pending_addr = b->last;
        c->pending_imm = b->ret_imm;
    }
}

/* The block is not in the direct-mapped copy `b`: from the table, or decoded now. */
static COLD void enter_missed_block(ss_cpu *c, void *uc, uint64_t addr, uint32_t size,
                                    ss_block *b) {
    ss_block *full = cache_find(c, addr);
    if (!full->addr || full->size != size) {
        int r = native_decode(c, addr, size) ? DECODE_OK : c->decode(c, addr, size);
        if (r == DECODE_RESTART) {
            /* Hooks were added for this block: retranslate it before it runs. */
            c->blocks--;
            reg_set(c, uc, c->reg_rip, addr);
            return;
        }
        if (r != DECODE_OK) {
            c->blocks--;
            stop_with(c, uc, EV_DECODE);
            return;
        }
        full = cache_find(c, addr);
        if (!full->addr) return;
    }
    *b = *full;
    enter_block(c, addr, size, b);
}

/* UC_HOOK_BLOCK callback. */
void ss_block_hook(void *uc, uint64_t addr, uint32_t size, void *user_data) {
    ss_cpu *c = (ss_cpu *)user_data;
    if (c->pending && !resolve_pending(c, uc, addr)) return;
    c->blocks++;
    if (__builtin_expect(c->budget && c->blocks >= c->budget, 0)) {
        budget_spent(c, uc);
        return;
    }
    ss_block *b = l0_slot(c, addr);
    if (__builtin_expect(b->addr != addr || b->size != size, 0)) {
        enter_missed_block(c, uc, addr, size, b);
        return;
    }
    enter_block(c, addr, size, b);
}

/* Address of the hook, for uc_hook_add through ctypes. */
void *ss_block_hook_ptr(void) { return (void *)&ss_block_hook; }

/* UC_HOOK_CODE callback for RDSSP and INCSSPQ, the CET instructions that run in hot
 * paths (setjmp/longjmp, the C++ unwinder): the common case here, anything unusual
 * (shadow stacks off for INCSSP: #UD; a slot that is not shadow stack: #PF) in Python,
 * whose cet.py defines the semantics this mirrors. */
void ss_cet_hook(void *uc, uint64_t addr, uint32_t size, void *user_data) {
    ss_cet_site *site = (ss_cet_site *)user_data;
    ss_cpu *c = site->cpu;
    int enabled = (c->cet & CET_SHSTK_EN) != 0;
    switch (site->op) {
    case CET_RDSSPQ:
    case CET_RDSSPD:
        if (!enabled) return; /* a NOP: software pre-zeroes the register to see that */
        reg_set(c, uc, site->reg, site->op == CET_RDSSPQ ? c->ssp : (c->ssp & 0xFFFFFFFFu));
        return;
    case CET_INCSSPQ:
        if (enabled) {
            uint64_t n = reg_get(c, uc, site->reg) & 0xFF;
            uint64_t last = c->ssp + 8 * (n ? n - 1 : 0);
            /* the first and the last popped slots are read */
            if (ss_slot(c, c->ssp) && ss_slot(c, last)) {
                c->ssp += 8 * n;
                return;
            }
        }
        break;
    }
    c->cet_slow(uc, addr, size, NULL);
}

void *ss_cet_hook_ptr(void) { return (void *)&ss_cet_hook; }

/* ---------------------------------------------------------------------------------
 * RSTORSSP and SAVEPREVSSP, the shadow-stack switch of coroutine libraries. Unicorn
 * raises invalid-instruction for both; this UC_HOOK_INSN_INVALID callback (registered
 * before the Python one) runs the success path of cet.py's rstorssp/saveprevssp for
 * sites Python registered after running them once. Anything else (a site not
 * registered, shadow stacks off, a bad token, a slot that is not shadow stack) returns
 * false untouched and the Python hook decides, so faults stay exactly as cet.py makes
 * them.
 */
#define XSITES 256
#define X_RSTORSSP 1
#define X_SAVEPREVSSP 2
#define XF_RIPREL 1
#define XF_BASE 2
#define XF_INDEX 4
#define XF_SEG 8

typedef struct {
    uint64_t addr; /* 0 = empty */
    uint32_t op, size;
    int32_t base, index, seg; /* Unicorn register ids (seg: FS_BASE or GS_BASE) */
    uint32_t flags;
    uint64_t scale;
    uint64_t disp;
} ss_xsite;

typedef struct {
    ss_cpu *cpu;
    int64_t reg_eflags;
    ss_xsite sites[XSITES];
} ss_xtable;

size_t ss_sizeof_xtable(void) { return sizeof(ss_xtable); }

static inline ss_xsite *xslot(ss_xtable *x, uint64_t addr) {
    return &x->sites[(addr ^ (addr >> 8) ^ (addr >> 16)) & (XSITES - 1)];
}

void ss_xsite_set(ss_xtable *x, uint64_t addr, uint32_t op, uint32_t size, int32_t base,
                  int32_t index, uint64_t scale, int32_t seg, uint32_t flags, uint64_t disp) {
    ss_xsite *s = xslot(x, addr);
    s->addr = addr;
    s->op = op;
    s->size = size;
    s->base = base;
    s->index = index;
    s->scale = scale;
    s->seg = seg;
    s->flags = flags;
    s->disp = disp;
}

void ss_xsite_invalidate(ss_xtable *x, uint64_t start, uint64_t end) {
    for (int i = 0; i < XSITES; i++)
        if (x->sites[i].addr >= start && x->sites[i].addr < end) x->sites[i].addr = 0;
}

#define EFLAGS_CF 0x1ull
#define EFLAGS_OSZAPC 0x8D5ull

int ss_invalid_hook(void *uc, void *user_data) {
    ss_xtable *x = (ss_xtable *)user_data;
    ss_cpu *c = x->cpu;
    uint64_t rip = reg_get(c, uc, c->reg_rip);
    ss_xsite *s = xslot(x, rip);
    if (s->addr != rip || rip == 0 || !(c->cet & CET_SHSTK_EN)) return 0;
    if (s->op == X_RSTORSSP) {
        uint64_t ea = s->disp;
        if (s->flags & XF_RIPREL) ea += rip + s->size;
        if (s->flags & XF_BASE) ea += reg_get(c, uc, s->base);
        if (s->flags & XF_INDEX) ea += reg_get(c, uc, s->index) * s->scale;
        if (s->flags & XF_SEG) ea += reg_get(c, uc, s->seg);
        if (ea & 7) return 0;
        uint64_t *slot = ss_slot(c, ea);
        if (!slot) return 0;
        uint64_t token = *slot;
        if ((token & 3) != 1 || (((token & ~1ull) - 8) & ~7ull) != ea) return 0;
        *slot = c->ssp | 3;
        c->ssp = ea;
        uint64_t flags = reg_get(c, uc, x->reg_eflags) & ~EFLAGS_OSZAPC;
        if (token & 4) flags |= EFLAGS_CF;
        reg_set(c, uc, x->reg_eflags, flags);
    } else if (s->op == X_SAVEPREVSSP) {
        uint64_t ssp = c->ssp;
        if (ssp & 7) return 0;
        uint64_t *p = ss_slot(c, ssp);
        if (!p) return 0;
        uint64_t prev = *p;
        if (reg_get(c, uc, x->reg_eflags) & EFLAGS_CF) return 0;
        if (!(prev & 2)) return 0;
        uint64_t old = prev & ~3ull;
        uint64_t a32 = old - 4, token_addr = (old & ~7ull) - 8;
        uint64_t *s32 = ss_slot(c, a32 & ~7ull);
        uint64_t *tk = ss_slot(c, token_addr);
        if (!s32 || !tk) return 0; /* Python writes what it can, then faults */
        memset((uint8_t *)s32 + (a32 & 7), 0, 4);
        *tk = old | 1;
        c->ssp = ssp + 8;
    } else {
        return 0;
    }
    reg_set(c, uc, c->reg_rip, rip + s->size);
    return 1;
}

void *ss_invalid_hook_ptr(void) { return (void *)&ss_invalid_hook; }

/* --- start-up ------------------------------------------------------------------------ */
#include <dlfcn.h>
#include <pthread.h>

/* Mapping and relocating Unicorn's and capstone's libraries is a tenth of a static hello
 * world's start-up (issue 18). ctypes' dlopen holds the GIL, a thread of this library's
 * does not: started before Python imports the kernel, it loads them on the other core,
 * and the later ctypes.CDLL of the same paths finds them loaded (or waits for the dynamic
 * loader's lock until they are). The handles are kept: the libraries stay loaded, as they
 * would anyway. `paths` holds NUL-terminated paths, the last followed by another NUL. */
static void *preload_main(void *paths) {
    for (const char *p = paths; *p; p += strlen(p) + 1) dlopen(p, RTLD_NOW | RTLD_LOCAL);
    free(paths);
    return NULL;
}

int ss_preload(const char *paths, size_t len) {
    char *copy = malloc(len + 2);
    if (!copy) return -1;
    memcpy(copy, paths, len);
    copy[len] = copy[len + 1] = 0;
    pthread_attr_t attr;
    pthread_t thread;
    int r = pthread_attr_init(&attr);
    if (!r) r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!r) r = pthread_create(&thread, &attr, preload_main, copy);
    pthread_attr_destroy(&attr);
    if (r) free(copy);
    return r;
}
