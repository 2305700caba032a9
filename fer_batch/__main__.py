from fer_batch.entry import main

main()
