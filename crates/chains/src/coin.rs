//! SLIP-44 coin types and the address format each one uses.
//!
//! `gen_address_by_path` derives the key at `m/1/1/{coinType}/{index}` and answers the address
//! of the chain the coin type names. The platform knows two families of secp256k1 chains:
//!
//! * Bitcoin: coin type 0 (mainnet) and 1 (SLIP-44 "Testnet (all coins)", Bitcoin testnet and
//!   signet prefixes); addresses in the four encodings of [`BtcEncoding`](crate::address::BtcEncoding).
//! * EVM: coin type 60 (Ethereum; the public API tells callers to use 60 for every EVM chain)
//!   and the SLIP-44 coin types registered for EVM chains before ENSIP-11 moved new EVM chains
//!   to chain-id based coin types: [`EVM_COIN_TYPES`]. All use the EIP-55 address of the key.
//!   RSK (137, EIP-1191 checksum) and Avalanche (9000, several address formats) are not in the
//!   list on purpose.
//!
//! Any other secp256k1 coin type has no address format here ([`coin_family`] returns `None`).

use crate::address::Network;

/// SLIP-44 coin type of Bitcoin mainnet.
pub const BITCOIN: u32 = 0;
/// SLIP-44 coin type 1, "Testnet (all coins)": Bitcoin testnet/signet addresses.
pub const BITCOIN_TESTNET: u32 = 1;
/// SLIP-44 coin type of Ethereum, shared by every EVM chain in the public API.
pub const ETHEREUM: u32 = 60;

/// Coin types whose addresses are EIP-55 EVM addresses, ascending: Ethereum (60), Ethereum
/// Classic (61), POA (178), Energy Web (246), Theta (500), Gnosis/xDai (700), Callisto (820),
/// TomoChain (889), ThunderCore (1001), Fantom (1007), GoChain (6060), Energi (9797) and
/// Celo (52752): the ENSIP-11 list of EVM chains with a SLIP-44 coin type.
pub const EVM_COIN_TYPES: [u32; 13] = [
    60, 61, 178, 246, 500, 700, 820, 889, 1001, 1007, 6060, 9797, 52752,
];

/// The address family of a secp256k1 coin type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoinFamily {
    /// Bitcoin on this network.
    Bitcoin(Network),
    /// An EVM chain: EIP-55 addresses.
    Evm,
}

/// The address family of a secp256k1 coin type, `None` when the platform knows no address
/// format for it.
pub fn coin_family(coin_type: u32) -> Option<CoinFamily> {
    match coin_type {
        BITCOIN => Some(CoinFamily::Bitcoin(Network::Mainnet)),
        BITCOIN_TESTNET => Some(CoinFamily::Bitcoin(Network::Testnet)),
        c if EVM_COIN_TYPES.binary_search(&c).is_ok() => Some(CoinFamily::Evm),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(coin_family(0), Some(CoinFamily::Bitcoin(Network::Mainnet)));
        assert_eq!(coin_family(1), Some(CoinFamily::Bitcoin(Network::Testnet)));
        for c in EVM_COIN_TYPES {
            assert_eq!(coin_family(c), Some(CoinFamily::Evm), "{c}");
        }
        // Litecoin, RSK, TRON, Avalanche, Solana (ed25519): no secp256k1 address format here.
        for c in [2, 137, 195, 9000, 501, 0x7fff_ffff] {
            assert_eq!(coin_family(c), None, "{c}");
        }
    }

    #[test]
    fn evm_list_is_sorted_for_binary_search() {
        assert!(EVM_COIN_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(EVM_COIN_TYPES[0], ETHEREUM);
    }
}
