/*
 * pnic_e1000_compat.h -- e1000 driver code as its authors wrote it, against
 * pseudonic's register window (pseudonic.h: pnic_reg_read, pnic_reg_write).
 *
 * The names are the 8254x SDM's (section 13.4; table 13-2), spelt as drivers
 * spell them.  Register access compiles with one macro, whichever style the
 * code uses:
 *
 *   Intel's shared code    E1000_READ_REG(hw, E1000_ICR), E1000_WRITE_REG(hw, E1000_RDT, i)
 *                          -- define PNIC_HW_NIC(hw) to give the nic from your hw struct
 *                             (by default hw is the struct pnic_nic *)
 *   readl/writel           uint8_t *hw_addr = pnic_mmio(nic); readl(hw_addr + E1000_ICR);
 *                          writel(i, hw_addr + E1000_RDT) -- hw_addr is a token, never
 *                          dereferenced: the window decodes the offset from it
 *
 * Receive and transmit: the rings a driver places itself (RDBAL..RDT,
 * TDBAL..TDT), the set-up registers (RA, MTA, TIPG, the delay timers) and
 * the statistics.  No GPL code: these are the datasheet's numbers.
 */
#ifndef PNIC_E1000_COMPAT_H
#define PNIC_E1000_COMPAT_H

#include <stdint.h>

#include "pseudonic.h"

/* Registers (SDM 13.4) */
#define E1000_CTRL PNIC_REG_CTRL
#define E1000_STATUS PNIC_REG_STATUS
#define E1000_ICR PNIC_REG_ICR
#define E1000_ITR PNIC_REG_ITR
#define E1000_ICS PNIC_REG_ICS
#define E1000_IMS PNIC_REG_IMS
#define E1000_IMC PNIC_REG_IMC
#define E1000_RCTL PNIC_REG_RCTL
#define E1000_RDBAL PNIC_REG_RDBAL
#define E1000_RDBAH PNIC_REG_RDBAH
#define E1000_RDLEN PNIC_REG_RDLEN
#define E1000_RDH PNIC_REG_RDH
#define E1000_RDT PNIC_REG_RDT
#define E1000_RDTR PNIC_REG_RDTR
#define E1000_RXCSUM PNIC_REG_RXCSUM
#define E1000_CRCERRS PNIC_REG_CRCERRS
#define E1000_RXERRC PNIC_REG_RXERRC
#define E1000_MPC PNIC_REG_MPC
#define E1000_GPRC PNIC_REG_GPRC
#define E1000_GORCL PNIC_REG_GORCL
#define E1000_GORCH PNIC_REG_GORCH
#define E1000_ROC PNIC_REG_ROC
#define E1000_RADV PNIC_REG_RADV
/* The transmit ring (SDM 13.4.33 TCTL to 13.4.40 TDT), its delay timers, and
 * its statistics (13.6). */
#define E1000_TCTL PNIC_REG_TCTL
#define E1000_TIPG PNIC_REG_TIPG
#define E1000_TDBAL PNIC_REG_TDBAL
#define E1000_TDBAH PNIC_REG_TDBAH
#define E1000_TDLEN PNIC_REG_TDLEN
#define E1000_TDH PNIC_REG_TDH
#define E1000_TDT PNIC_REG_TDT
#define E1000_TIDV PNIC_REG_TIDV
#define E1000_TADV PNIC_REG_TADV
#define E1000_GPTC PNIC_REG_GPTC
#define E1000_GOTCL PNIC_REG_GOTCL
#define E1000_GOTCH PNIC_REG_GOTCH
/* Set-up: the receive address (RAL0 at E1000_RA, RAH0 at E1000_RA + 4) and
 * the multicast table array (128 registers from E1000_MTA), SDM table 13-2.
 * No address filter is modelled: RA is stored, MTA writes are taken. */
#define E1000_RA PNIC_REG_RAL0
#define E1000_MTA PNIC_REG_MTA

/* The legacy receive and transmit descriptors (SDM 3.2.3, 3.3.3), by the
 * names drivers give them.  The transmit descriptor's fields: buffer_addr,
 * length, cso, cmd, status, css, special. */
#define e1000_rx_desc pnic_rx_desc
#define e1000_tx_desc pnic_tx_desc

/* Bits */
#define E1000_CTRL_ASDE 0x00000020u /* CTRL bit 5: auto-speed detection (SDM 13.4.1) */
#define E1000_CTRL_SLU 0x00000040u  /* CTRL bit 6: set link up */
#define E1000_CTRL_RST PNIC_CTRL_RST
#define E1000_STATUS_FD PNIC_STATUS_FD
#define E1000_STATUS_LU PNIC_STATUS_LU
#define E1000_ICR_TXDW PNIC_ICR_TXDW
#define E1000_ICR_TXQE PNIC_ICR_TXQE
#define E1000_ICR_RXDMT0 PNIC_ICR_RXDMT0
#define E1000_ICR_RXO PNIC_ICR_RXO
#define E1000_ICR_RXT0 PNIC_ICR_RXT0
#define E1000_IMS_TXDW PNIC_ICR_TXDW
#define E1000_IMS_TXQE PNIC_ICR_TXQE
#define E1000_IMS_RXDMT0 PNIC_ICR_RXDMT0
#define E1000_IMS_RXO PNIC_ICR_RXO
#define E1000_IMS_RXT0 PNIC_ICR_RXT0
#define E1000_RCTL_EN PNIC_RCTL_EN
#define E1000_RCTL_LPE PNIC_RCTL_LPE
#define E1000_RCTL_BAM PNIC_RCTL_BAM
#define E1000_RCTL_SZ_2048 0u /* BSIZE 00 with BSEX clear: 2048-byte buffers (SDM 13.4.22) */
#define E1000_RCTL_SECRC PNIC_RCTL_SECRC
#define E1000_RXCSUM_IPOFL PNIC_RXCSUM_IPOFL
#define E1000_RXCSUM_TUOFL PNIC_RXCSUM_TUOFL
#define E1000_RAH_AV 0x80000000u /* RAH bit 31: the address is valid */
#define E1000_RXD_STAT_DD PNIC_RXD_STAT_DD
#define E1000_RXD_STAT_EOP PNIC_RXD_STAT_EOP
#define E1000_RXD_STAT_IXSM PNIC_RXD_STAT_IXSM
#define E1000_RXD_STAT_TCPCS PNIC_RXD_STAT_TCPCS
#define E1000_RXD_STAT_IPCS PNIC_RXD_STAT_IPCS
#define E1000_RXD_ERR_TCPE PNIC_RXD_ERR_TCPE
#define E1000_RXD_ERR_IPE PNIC_RXD_ERR_IPE
#define E1000_RXD_ERR_FRAME_ERR_MASK PNIC_RXD_ERR_FRAME
#define ETHERNET_FCS_SIZE PNIC_FCS
#define E1000_TCTL_EN PNIC_TCTL_EN
#define E1000_TCTL_PSP PNIC_TCTL_PSP
/* The legacy transmit descriptor's cmd and status bytes (SDM 3.3.3): bits
 * within the byte, as e1000_tx_desc has them (not shifted into a dword). */
#define E1000_TXD_CMD_EOP PNIC_TXD_CMD_EOP
#define E1000_TXD_CMD_IFCS PNIC_TXD_CMD_IFCS
#define E1000_TXD_CMD_RS PNIC_TXD_CMD_RS
#define E1000_TXD_STAT_DD PNIC_TXD_STAT_DD

/* Intel's shared-code style. */
#ifndef PNIC_HW_NIC
#define PNIC_HW_NIC(hw) (hw)
#endif
#define E1000_READ_REG(hw, reg) pnic_reg_read(PNIC_HW_NIC(hw), (reg))
#define E1000_WRITE_REG(hw, reg, value) pnic_reg_write(PNIC_HW_NIC(hw), (reg), (value))

/* readl/writel over a register base: pnic_mmio() hands out a token for the
 * base; an address made from it carries the offset, and the nic it stands
 * for is the one last given (one driver per node). */
#define PNIC_MMIO_TOKEN ((uintptr_t)0x10000000u)
static struct pnic_nic *pnic_mmio_nic;

static inline uint8_t *pnic_mmio(struct pnic_nic *nic)
{
    pnic_mmio_nic = nic;
    return (uint8_t *)PNIC_MMIO_TOKEN;
}

#define readl(addr) pnic_reg_read(pnic_mmio_nic, (uint32_t)((uintptr_t)(addr) - PNIC_MMIO_TOKEN))
#define writel(value, addr) pnic_reg_write(pnic_mmio_nic, (uint32_t)((uintptr_t)(addr) - PNIC_MMIO_TOKEN), (value))

#endif /* PNIC_E1000_COMPAT_H */
